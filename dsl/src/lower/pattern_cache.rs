//! The regexes of `when` conditions and the globs of `output`, checked once per distinct text
//! while a pipeline is lowered: the steps of a large pipeline repeat the same few patterns, and
//! compiling one costs far more than checking the rest of a step.

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;

use crate::lower::params::first_line;
use crate::model::Pattern;

#[derive(Default)]
pub(crate) struct PatternCache {
    /// By regex text: the compiled regex, or what to say about why it does not compile.
    regexes: HashMap<String, Result<Arc<Regex>, String>>,
    /// By glob text: what to say about why it is not a valid glob, if it is not.
    globs: HashMap<String, Option<String>>,
}

impl PatternCache {
    /// The pattern for the regex `source`, or why it does not compile.
    pub fn regex(&mut self, source: &str) -> Result<Pattern, String> {
        if !self.regexes.contains_key(source) {
            let compiled = Regex::new(source)
                .map(Arc::new)
                .map_err(|error| first_line(&error.to_string()));
            self.regexes.insert(source.to_string(), compiled);
        }
        match &self.regexes[source] {
            Ok(regex) => Ok(Pattern::compiled(source, Arc::clone(regex))),
            Err(error) => Err(error.clone()),
        }
    }

    /// Why `glob` is not a valid glob, or `None` if it is one.
    pub fn glob_error(&mut self, glob: &str) -> Option<String> {
        if !self.globs.contains_key(glob) {
            let error = globset::Glob::new(glob)
                .err()
                .map(|error| error.kind().to_string());
            self.globs.insert(glob.to_string(), error);
        }
        self.globs[glob].clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_each_regex_once() {
        let mut cache = PatternCache::default();
        let first = cache.regex("^MTX").unwrap();
        let second = cache.regex("^MTX").unwrap();
        assert_eq!(first, second);
        assert_eq!(cache.regexes.len(), 1);
        assert!(second.is_match("MTX01"));
        assert!(cache.regex("(").is_err());
        assert!(cache.regex("(").is_err());
        assert_eq!(cache.regexes.len(), 2);
    }

    #[test]
    fn checks_each_glob_once() {
        let mut cache = PatternCache::default();
        assert_eq!(cache.glob_error("*.txt"), None);
        assert_eq!(cache.glob_error("*.txt"), None);
        assert!(cache.glob_error("[a").is_some());
        assert_eq!(cache.globs.len(), 2);
    }
}
