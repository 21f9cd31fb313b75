//! A group key as one path segment: how a task's output directory (`out/PIPELINE/STEP/SEGMENT`)
//! and its log files (`SEGMENT.N.out`) are named. The mapping is injective, so distinct groups
//! never share a directory, and every segment is a single valid path component:
//!
//! - ASCII letters, digits, `_`, `-` and `.` stay as they are, except a `.` that starts the key
//!   (no segment is hidden, `.` or `..`);
//! - every other byte of the key's UTF-8 is `%` and two upper-case hex digits (`%` itself is
//!   `%25`, a space `%20`, `é` is `%C3%A9`);
//! - the empty key is `%`, which no other key gives;
//! - a key whose segment would be longer than [`LONGEST`] bytes is cut at an escape boundary and
//!   ends in `~` and 16 hex digits of the blake3 of the whole key (`~` appears in no other
//!   segment): file systems allow 255 bytes per component.
//!
//! [`key_of`] reads a segment back to its key, except a cut one.

/// The longest segment made, in bytes: room for `.N.out` after it within 255.
pub const LONGEST: usize = 200;

/// The path segment of group key `key`.
pub fn path_segment(key: &str) -> String {
    if key.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(key.len());
    for (i, byte) in key.bytes().enumerate() {
        let plain =
            byte.is_ascii_alphanumeric() || b"_-".contains(&byte) || (byte == b'.' && i > 0);
        if plain {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.len() <= LONGEST {
        return out;
    }
    let hash = blake3::hash(key.as_bytes()).to_hex();
    let mut cut = LONGEST - 17;
    // Not inside an escape: the two characters before the cut hold no `%`.
    while out[cut.saturating_sub(2)..cut].contains('%') {
        cut -= 1;
    }
    format!("{}~{}", &out[..cut], &hash[..16])
}

/// The key a segment stands for; `None` for a cut segment, or text [`path_segment`] never makes.
pub fn key_of(segment: &str) -> Option<String> {
    if segment == "%" {
        return Some(String::new());
    }
    if segment.contains('~') {
        return None;
    }
    let bytes = segment.as_bytes();
    let mut key = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            key.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            key.push(bytes[i]);
            i += 1;
        }
    }
    let key = String::from_utf8(key).ok()?;
    (path_segment(&key) == segment).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_that_shared_a_directory_before_do_not() {
        // `Ω` was `%3A9` and so was `:9`; `.x` and `_.x` were both `_.x`.
        let keys = [
            "Ω", ":9", ".x", "_.x", "", "_", "%", "%25", "a b", "a%20b", "..", ".",
        ];
        let segments: std::collections::BTreeSet<String> =
            keys.iter().map(|k| path_segment(k)).collect();
        assert_eq!(segments.len(), keys.len(), "{segments:?}");
        assert_eq!(path_segment("Ω"), "%CE%A9");
        assert_eq!(path_segment(":9"), "%3A9");
        assert_eq!(path_segment(".x"), "%2Ex");
        assert_eq!(path_segment("_.x"), "_.x");
        assert_eq!(path_segment("S1.r1-a_b"), "S1.r1-a_b");
        assert_eq!(path_segment(".."), "%2E.");
    }

    #[test]
    fn a_long_key_is_cut_and_named_by_its_hash() {
        let long = "é".repeat(100);
        let segment = path_segment(&long);
        assert!(segment.len() <= LONGEST, "{}", segment.len());
        assert!(segment.contains('~'));
        assert_ne!(segment, path_segment(&format!("{long}x")));
        assert_eq!(key_of(&segment), None);
    }

    /// A valid single path component: not empty, `.` or `..`; no `/` or NUL; short enough.
    fn is_component(segment: &str) -> bool {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && !segment.starts_with('.')
            && !segment.contains(['/', '\0'])
            && segment.len() <= LONGEST
    }

    proptest! {
        #[test]
        fn distinct_keys_give_distinct_segments(a in any::<String>(), b in any::<String>()) {
            prop_assume!(a != b);
            prop_assert_ne!(path_segment(&a), path_segment(&b));
        }

        #[test]
        fn every_segment_is_one_component_and_reads_back(key in any::<String>()) {
            let segment = path_segment(&key);
            prop_assert!(is_component(&segment), "{:?} -> {:?}", key, segment);
            if !segment.contains('~') {
                prop_assert_eq!(key_of(&segment), Some(key));
            }
        }

        #[test]
        fn keys_of_odd_bytes_and_long_keys_too(key in "[\\PC./%~ .]{0,120}") {
            let segment = path_segment(&key);
            prop_assert!(is_component(&segment));
            prop_assert_ne!(path_segment(&format!("{key}!")), segment);
        }
    }
}
