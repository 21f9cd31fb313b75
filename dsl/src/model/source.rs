//! A source as the engine sees it: where its items are and how they form groups.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDef {
    pub name: String,
    /// The directory the globs are relative to, as written (relative to the `.pipe` file).
    pub root: String,
    pub globs: Vec<String>,
    pub excludes: Vec<String>,
    pub items: ItemKind,
    pub grouping: Option<Grouping>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    #[default]
    Files,
    /// Each matching directory is one item, hashed as a whole.
    Directories,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grouping {
    /// The group's name, as in `each NAME`.
    pub group: String,
    pub by: GroupBy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// Searched in the item's path relative to the root; the capture named after the group is
    /// the key, the other named captures are fields.
    Regex {
        pattern: String,
        fields: Vec<String>,
    },
    /// The N-th directory of the relative path.
    Segment(usize),
}

impl Grouping {
    /// The fields a group of this grouping has (its own name included).
    pub fn fields(&self) -> Vec<String> {
        match &self.by {
            GroupBy::Regex { fields, .. } => fields.clone(),
            GroupBy::Segment(_) => vec![self.group.clone()],
        }
    }
}
