//! The standard library of `.pipe` modules, embedded at build time from the top-level `stdlib/`.

include!(concat!(env!("OUT_DIR"), "/stdlib.rs"));

/// The source of stdlib module `name`.
pub fn module(name: &str) -> Option<&'static str> {
    MODULES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The names of every stdlib module.
pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|(name, _)| *name)
}
