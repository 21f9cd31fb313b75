//! Content hashes: blake3 of a file's bytes, streamed through a large reused buffer, and the
//! digest that stands for a directory item's whole content.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::error::ScanError;
use super::tree::{EntryKind, Tree};

/// Size of the read buffer. Large reads keep blake3's SIMD lanes full and the syscall count of a
/// 1 GB file low; each hashing thread allocates one and reuses it for every file.
pub(crate) const BUFFER_SIZE: usize = 1 << 20;

/// blake3 of a file's content as 64 lowercase hex digits, read in blocks of up to 1 MiB (a
/// small file gets a buffer of its size: a 1 MiB one costs a fresh mapping each time).
pub fn hash_file(path: &Path) -> io::Result<String> {
    let size = std::fs::metadata(path)?.len();
    let mut buffer =
        vec![0u8; usize::try_from(size).map_or(BUFFER_SIZE, |s| s.clamp(4096, BUFFER_SIZE))];
    hash_file_with(path, &mut buffer).map(|(hash, _)| hash.to_hex().to_string())
}

/// blake3 of a file's content and the number of bytes read, using the caller's buffer.
pub(crate) fn hash_file_with(path: &Path, buffer: &mut [u8]) -> io::Result<(blake3::Hash, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    loop {
        match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                total += n as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok((hasher.finalize(), total))
}

/// blake3 of a file, or the content digest of a directory, as 64 lowercase hex digits
/// (symlinks followed).
///
/// A directory's digest is blake3 over the tag `engine directory v1\0` followed by one record per
/// entry under it (see `Tree`: regular files and directories, symlinks followed, `.engine`
/// skipped), sorted by the entry's path relative to the directory, as bytes:
///
/// - a file: `f`, the relative path, a NUL byte, the 32 bytes of the file's blake3;
/// - a directory: `d`, the relative path, a NUL byte.
///
/// So the digest changes when any file's content changes, or a file or directory is added,
/// removed or renamed; it does not change when files are only touched, when permissions change,
/// or when the directory is copied elsewhere. Records cannot run into one another, since paths
/// hold no NUL and hashes have a fixed length.
pub fn hash_path(path: &Path) -> io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return hash_file(path);
    }
    let tree = Tree::list(path).map_err(into_io)?;
    let mut buffer = vec![0u8; BUFFER_SIZE];
    let mut hashes = Vec::with_capacity(tree.entries.len());
    for entry in &tree.entries {
        hashes.push(match entry.kind {
            EntryKind::File => match hash_file_with(&entry.path, &mut buffer) {
                Ok((hash, _)) => Some(hash),
                Err(error) if error.kind() == io::ErrorKind::NotFound => None,
                Err(error) => return Err(into_io(ScanError::read(&entry.path, error))),
            },
            EntryKind::Dir => None,
        });
    }
    Ok(directory_digest(&tree, &hashes).to_hex().to_string())
}

/// The digest of a directory item from its listing and the hashes of its files, index for index
/// (`None` for directories, and for files that vanished before they could be read, which are
/// left out).
pub(crate) fn directory_digest(tree: &Tree, hashes: &[Option<blake3::Hash>]) -> blake3::Hash {
    let mut digest = blake3::Hasher::new();
    digest.update(b"engine directory v1\0");
    for (entry, hash) in tree.entries.iter().zip(hashes) {
        match (entry.kind, hash) {
            (EntryKind::File, Some(hash)) => {
                digest.update(b"f");
                digest.update(&entry.rel);
                digest.update(b"\0");
                digest.update(hash.as_bytes());
            }
            (EntryKind::File, None) => {}
            (EntryKind::Dir, _) => {
                digest.update(b"d");
                digest.update(&entry.rel);
                digest.update(b"\0");
            }
        }
    }
    digest.finalize()
}

/// A scan error as an `io::Error` of the same kind, its message naming the path.
pub(crate) fn into_io(error: ScanError) -> io::Error {
    let kind = match &error {
        ScanError::Read { error, .. } | ScanError::Walk { error, .. } => error.kind(),
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::{Duration, SystemTime};

    #[test]
    fn file_hash_is_blake3_of_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        fs::write(&path, "hello").unwrap();
        assert_eq!(
            hash_file(&path).unwrap(),
            blake3::hash(b"hello").to_hex().to_string()
        );
        assert_eq!(hash_path(&path).unwrap(), hash_file(&path).unwrap());
    }

    #[test]
    fn large_file_spanning_many_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let data: Vec<u8> = (0..(3 * BUFFER_SIZE + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        fs::write(&path, &data).unwrap();
        assert_eq!(
            hash_file(&path).unwrap(),
            blake3::hash(&data).to_hex().to_string()
        );
    }

    #[test]
    fn directory_hash_follows_content_not_times() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        fs::create_dir_all(run.join("lane1")).unwrap();
        fs::write(run.join("lane1/a.bin"), "aaaa").unwrap();
        fs::write(run.join("b.bin"), "bb").unwrap();
        let first = hash_path(&run).unwrap();
        assert_eq!(first.len(), 64);

        fs::File::options()
            .write(true)
            .open(run.join("lane1/a.bin"))
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        assert_eq!(hash_path(&run).unwrap(), first, "touched only");

        let copy = dir.path().join("copy");
        fs::create_dir_all(copy.join("lane1")).unwrap();
        fs::write(copy.join("lane1/a.bin"), "aaaa").unwrap();
        fs::write(copy.join("b.bin"), "bb").unwrap();
        assert_eq!(hash_path(&copy).unwrap(), first, "same content elsewhere");

        fs::write(run.join("lane1/a.bin"), "aaab").unwrap();
        let changed = hash_path(&run).unwrap();
        assert_ne!(changed, first, "nested content changed");

        fs::rename(run.join("b.bin"), run.join("c.bin")).unwrap();
        assert_ne!(hash_path(&run).unwrap(), changed, "renamed");

        fs::create_dir(copy.join("empty")).unwrap();
        assert_ne!(hash_path(&copy).unwrap(), first, "empty directory added");
    }

    #[test]
    fn a_directory_is_not_the_file_with_its_digest_content() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert_ne!(hash_path(&empty).unwrap(), hash_path(&file).unwrap());
    }
}
