//! The direction of dependencies between the engine's modules, checked: each module may use
//! only the modules below it in [`LAYERS`], so the layout reads top down as the flow does
//! (the command line drives the daemon and the API, which drive runs, which plan and execute
//! tasks, which the store records through the lifecycle).

/// From the top down; modules in one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["daemon"],
    &["api"],
    &["web", "inspect"],
    &["run"],
    &["plan"],
    &["exec", "scan"],
    &["store"],
    &["lifecycle"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The modules `text` names as `crate::NAME`, leaving out comments and test modules.
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("mod tests") {
            break;
        }
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((number + 1, name));
        }
    }
    found
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(path);
        }
    }
}

#[test]
fn every_module_uses_only_the_modules_below_it() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let Some(module) = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .filter(|m| !m.ends_with(".rs"))
        else {
            continue; // lib.rs, main.rs, this file
        };
        let own = layer(module).unwrap_or_else(|| panic!("module `{module}` is in no layer"));
        for (line, used) in uses(&std::fs::read_to_string(&file).unwrap()) {
            let Some(theirs) = layer(&used) else { continue };
            if used != module && theirs <= own {
                wrong.push(format!(
                    "{}:{line}: `{module}` uses `{used}`",
                    relative.display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the direction:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn uses_are_found_in_code_and_not_in_comments_or_tests() {
    let text = "use crate::store::Store;\n// crate::run\nlet x = crate::plan::f(crate::scan::g);\n#[cfg(test)]\nmod tests {\n use crate::cli;\n}\n";
    let names: Vec<String> = uses(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["store", "plan", "scan"]);
}
