//! Loading a `.pipe` file: read it, parse it, resolve its `use`s (stdlib modules embedded in the
//! binary, or files relative to it), check everything, and lower its pipelines. The one entry
//! point the engine needs.

use std::path::{Path, PathBuf};

use crate::ast::{self, TopItem, UseTarget};
use crate::diagnostic::{did_you_mean, has_errors, Code, Diagnostic};
use crate::lower::templates::{check_template, TemplateTable};
use crate::lower::{lower_module, Names};
use crate::model::Pipeline;
use crate::parser::{parse, parse_with};
use crate::span::{FileId, SourceMap};
use crate::stdlib;

/// Everything known after loading one file.
#[derive(Debug)]
pub struct Loaded {
    /// The file and every module it uses, for rendering diagnostics.
    pub sources: SourceMap,
    pub root: FileId,
    /// The pipelines that checked without error (all of them when [`Loaded::is_valid`]).
    pub pipelines: Vec<Pipeline>,
    /// Errors and warnings, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    /// No errors (warnings allowed).
    pub fn is_valid(&self) -> bool {
        !has_errors(&self.diagnostics)
    }

    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name == name)
    }
}

/// Every `.pipe` file under `dir`, in sorted order, skipping hidden directories and `target`.
pub fn pipe_files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if entry.file_type()?.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    walk(&path, files)?;
                }
            } else if path.extension().is_some_and(|e| e == "pipe") {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, &mut files)?;
    Ok(files)
}

/// Reads and loads the file at `path`. Only failing to read the file itself is an `Err`;
/// everything wrong inside it is a diagnostic.
pub fn load_file(path: &Path) -> std::io::Result<Loaded> {
    let text = std::fs::read_to_string(path)?;
    Ok(load_source(path, text))
}

/// Loads `text` as if it were the file at `path` (used to resolve relative `use`s).
pub fn load_source(path: impl Into<PathBuf>, text: impl Into<String>) -> Loaded {
    let path = path.into();
    let mut sources = SourceMap::new();
    let root = sources.add(path.clone(), text);
    let mut diagnostics = Vec::new();
    // The pipelines are lowered as they are read (see `PipelineLowering`); the module keeps
    // the rest, for its uses and templates.
    let mut pipelines = Vec::new();
    let module = match parse_with(root, sources.text(root), &mut pipelines) {
        Ok(module) => module,
        Err(errors) => {
            return Loaded {
                sources,
                root,
                pipelines: Vec::new(),
                diagnostics: errors,
            };
        }
    };

    let imports = resolve_uses(&module, &path, &mut sources, &mut diagnostics);
    let mut table = TemplateTable::default();
    table.add_own(&module);
    for (alias, imported) in &imports {
        table.add_imported(alias, imported);
    }
    for imported in std::iter::once(&module).chain(imports.iter().map(|(_, m)| m)) {
        for (item, _) in imported.items.nodes() {
            if let TopItem::Template(template) = item {
                check_template(template, &mut diagnostics);
            }
        }
    }
    let pipelines = lower_module(pipelines, &module, &table, &mut diagnostics);

    diagnostics.sort_by_key(|d| d.primary_span().map(|s| (s.file, s.start())));
    diagnostics.dedup();
    Loaded {
        sources,
        root,
        pipelines,
        diagnostics,
    }
}

/// Parses every module `module` uses; returns them with the alias their templates go by.
fn resolve_uses(
    module: &ast::Module,
    path: &Path,
    sources: &mut SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(String, ast::Module)> {
    let mut aliases = Names::new("module alias");
    let mut imports = Vec::new();
    for (item, span) in module.items.nodes() {
        let TopItem::Use(u) = item else { continue };
        let (display_path, text, default_alias) = match &u.target {
            UseTarget::Stdlib(name) => match stdlib::module(&name.text) {
                Some(text) => (
                    PathBuf::from(format!("<stdlib>/{}.pipe", name.text)),
                    text.to_string(),
                    name.clone(),
                ),
                None => {
                    let mut d = Diagnostic::new(
                        Code::UseNotFound,
                        format!("there is no stdlib module `{}`", name.text),
                    )
                    .label(name.span, "not in the standard library");
                    let known: Vec<&str> = stdlib::names().collect();
                    d = d.help(did_you_mean(&name.text, known.iter().copied()).unwrap_or_else(|| {
                        format!("the stdlib modules are {}; for a file, write its path in quotes: use \"lib/x.pipe\"", known.join(", "))
                    }));
                    diagnostics.push(d);
                    continue;
                }
            },
            UseTarget::Path(file) => {
                let resolved = path.parent().unwrap_or(Path::new("")).join(&file.value);
                match std::fs::read_to_string(&resolved) {
                    Ok(text) => {
                        let stem = Path::new(&file.value)
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        (
                            resolved,
                            text,
                            ast::Name {
                                text: stem,
                                span: file.span,
                            },
                        )
                    }
                    Err(error) => {
                        diagnostics.push(
                            Diagnostic::new(
                                Code::UseNotFound,
                                format!("cannot read `{}`: {error}", resolved.display()),
                            )
                            .label(file.span, "this file")
                            .help("a path in `use` is relative to the file that uses it"),
                        );
                        continue;
                    }
                }
            }
        };
        let alias = u.alias.clone().unwrap_or(default_alias);
        if !aliases.add(&alias, diagnostics) {
            continue;
        }
        let id = sources.add(display_path, text);
        match parse(id, sources.text(id)) {
            Ok(imported) => imports.push((alias.text, imported)),
            Err(errors) => {
                diagnostics.extend(errors);
                diagnostics.push(
                    Diagnostic::new(
                        Code::UseNotFound,
                        "the used module has errors, so its templates are not available",
                    )
                    .label(span, "used here"),
                );
            }
        }
    }
    imports
}
