//! The regex of a `~` or `!~` comparison. What it is, for serialization, equality and task
//! keys, is its text as written; the compiled regex is made once, by the checks that lower it
//! (shared by every comparison with the same text) or else at its first use.

use std::fmt;
use std::sync::{Arc, OnceLock};

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A regex as written, with its compiled form.
#[derive(Clone, Default)]
pub struct Pattern {
    source: String,
    /// Set by [`Pattern::compiled`], or on the first [`Pattern::is_match`]; `None` inside when
    /// the text does not compile, which only a deserialized pattern can hold (the checks reject
    /// such a condition).
    regex: OnceLock<Option<Arc<Regex>>>,
}

impl Pattern {
    /// A pattern that compiles its text when it is first matched.
    pub fn new(source: impl Into<String>) -> Pattern {
        Pattern {
            source: source.into(),
            regex: OnceLock::new(),
        }
    }

    /// A pattern whose text `source` has already been compiled to `regex`.
    pub(crate) fn compiled(source: &str, regex: Arc<Regex>) -> Pattern {
        Pattern {
            source: source.to_string(),
            regex: OnceLock::from(Some(regex)),
        }
    }

    /// The regex as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the regex matches somewhere in `text`; never, for a text that does not compile.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex
            .get_or_init(|| Regex::new(&self.source).ok().map(Arc::new))
            .as_ref()
            .is_some_and(|regex| regex.is_match(text))
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

/// Shown as its text, as a plain string would be.
impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.source, f)
    }
}

impl From<&str> for Pattern {
    fn from(source: &str) -> Pattern {
        Pattern::new(source)
    }
}

impl From<String> for Pattern {
    fn from(source: String) -> Pattern {
        Pattern::new(source)
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.source.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Pattern, D::Error> {
        String::deserialize(deserializer).map(Pattern::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_and_compares_as_its_text() {
        let pattern = Pattern::new("^MTX");
        assert_eq!(serde_json::to_string(&pattern).unwrap(), r#""^MTX""#);
        let back: Pattern = serde_json::from_str(r#""^MTX""#).unwrap();
        assert_eq!(back, pattern);
        assert_eq!(format!("{pattern:?}"), r#""^MTX""#);
        let shared = Arc::new(Regex::new("^MTX").unwrap());
        assert_eq!(Pattern::compiled("^MTX", shared), pattern);
    }

    #[test]
    fn matches_once_compiled_and_never_when_it_cannot_compile() {
        let pattern = Pattern::new("^MTX");
        assert!(pattern.is_match("MTX01"));
        assert!(!pattern.is_match("RTX01"));
        assert!(!Pattern::new("(").is_match("("));
    }
}
