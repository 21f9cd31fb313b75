//! Where the programs of direct commands are: searched on `PATH` once, not at every start.
//!
//! `execvp` tries each directory of `PATH` in turn, one failed `execve` per directory before
//! the program's own (eight of them for `/usr/bin/cp` on a typical `PATH`), and that at every
//! start. The supervisor remembers where it found a program instead, and before using it again
//! checks that no directory searched before it holds an executable of that name by now (a
//! `stat` that fails is far cheaper than an `execve` that does). So the answer is always the
//! one `execvp` would give.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

/// Programs found on `PATH`, by name and `PATH`.
#[derive(Default)]
pub(super) struct Programs {
    found: HashMap<(String, OsString), Found>,
}

struct Found {
    path: PathBuf,
    /// The same name in the directories searched before the program's.
    before: Vec<PathBuf>,
}

impl Found {
    fn still_first(&self) -> bool {
        !self.before.iter().any(|path| executable(path)) && executable(&self.path)
    }
}

impl Programs {
    /// The file `execvp` would run for `name` with this `PATH`; `None` when it is not found, or
    /// when the search depends on the working directory (an empty or relative entry), which
    /// is then left to `execvp`. A name with a slash is not searched for.
    pub(super) fn find(&mut self, name: &str, path: &OsStr) -> Option<PathBuf> {
        if name.contains('/') {
            return None;
        }
        let key = (name.to_string(), path.to_os_string());
        if let Some(found) = self.found.get(&key).filter(|found| found.still_first()) {
            return Some(found.path.clone());
        }
        let mut before = Vec::new();
        for dir in std::env::split_paths(path) {
            if !dir.is_absolute() {
                return None;
            }
            let candidate = dir.join(name);
            if executable(&candidate) {
                let found = Found {
                    path: candidate.clone(),
                    before,
                };
                self.found.insert(key, found);
                return Some(candidate);
            }
            before.push(candidate);
        }
        None
    }
}

/// A regular file this process may execute.
fn executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file())
        && access(path, AccessFlags::X_OK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn program(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn the_first_executable_on_path_is_found_and_a_new_earlier_one_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        let missing = tmp.path().join("missing");
        let path = std::env::join_paths([&missing, &first, &second]).unwrap();
        let mut programs = Programs::default();

        assert_eq!(programs.find("tool", &path), None);
        let later = program(&second, "tool");
        assert_eq!(programs.find("tool", &path), Some(later.clone()));
        assert_eq!(programs.find("tool", &path), Some(later));

        // Not executable: skipped, as by execvp.
        let plain = first.join("tool");
        std::fs::write(&plain, "").unwrap();
        assert_eq!(
            programs.find("tool", &path).as_deref(),
            Some(second.join("tool").as_path())
        );
        let earlier = program(&first, "tool");
        assert_eq!(programs.find("tool", &path), Some(earlier));
        std::fs::create_dir_all(&missing).unwrap();
        let earliest = program(&missing, "tool");
        assert_eq!(programs.find("tool", &path), Some(earliest.clone()));
        std::fs::remove_file(&earliest).unwrap();
        assert_eq!(programs.find("tool", &path), Some(first.join("tool")));
    }

    #[test]
    fn names_with_a_slash_and_relative_path_entries_are_left_to_execvp() {
        let tmp = tempfile::tempdir().unwrap();
        program(tmp.path(), "tool");
        let mut programs = Programs::default();
        assert_eq!(programs.find("./tool", tmp.path().as_os_str()), None);
        let relative = std::env::join_paths([Path::new("bin"), tmp.path()]).unwrap();
        assert_eq!(programs.find("tool", &relative), None);
    }
}
