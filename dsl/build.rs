//! Embeds every module of the top-level `stdlib/` directory into the crate, so the `engine`
//! binary carries its standard library with it.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stdlib");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut modules: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pipe") {
                println!("cargo:rerun-if-changed={}", path.display());
                let name = path
                    .file_stem()
                    .expect("a .pipe file has a stem")
                    .to_string_lossy()
                    .into_owned();
                modules.push((
                    name,
                    path.canonicalize()
                        .expect("stdlib path")
                        .display()
                        .to_string(),
                ));
            }
        }
    }
    modules.sort();
    let mut code = String::from("/// The standard library: (module name, source text), sorted by name.\npub const MODULES: &[(&str, &str)] = &[\n");
    for (name, path) in modules {
        writeln!(code, "    ({name:?}, include_str!({path:?})),").expect("writing to a String");
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("stdlib.rs");
    std::fs::write(out, code).expect("writing the stdlib table");
}
