//! Where a task's products are published: `OUT/PIPELINE/STEP/GROUP`, the group key made one
//! safe path segment (`_all` for an aggregate step).

use std::path::{Path, PathBuf};

use crate::exec::files::path_segment;

/// The output directory of `step`'s task for `group` in `pipeline`, under `out_root`.
pub fn out_dir(out_root: &Path, pipeline: &str, step: &str, group: Option<&str>) -> PathBuf {
    let group = group
        .map(path_segment)
        .unwrap_or_else(|| "_all".to_string());
    out_root.join(pipeline).join(step).join(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_task_has_its_directory() {
        let out = Path::new("/o");
        assert_eq!(
            out_dir(out, "p", "s", Some("a b")),
            Path::new("/o/p/s/a%20b")
        );
        assert_eq!(out_dir(out, "p", "s", None), Path::new("/o/p/s/_all"));
    }
}
