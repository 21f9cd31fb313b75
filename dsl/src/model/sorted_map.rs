//! A small map from names to values, kept as a sorted list: a step's environment variables
//! and its executor's settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::command::CommandTemplate;

/// A step's environment variables, by name.
pub type Env = SortedMap<CommandTemplate>;

/// Values by name, each name once, in name order. Serialized as a map, exactly as a
/// `BTreeMap` of them would be. Kept as a sorted list: a step has a few, and a pipeline has a
/// great many steps, while even the smallest `BTreeMap` node has room for eleven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedMap<V> {
    vars: Vec<(String, V)>,
}

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        SortedMap { vars: Vec::new() }
    }
}

impl<V> SortedMap<V> {
    /// The names and values in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &V)> {
        self.vars.iter().map(|(name, value)| (name, value))
    }

    /// The values in name order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &V> {
        self.vars.iter().map(|(_, value)| value)
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.vars
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| &self.vars[i].1)
    }

    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

/// As a map would: for a name given more than once, the last value is kept.
impl<V> FromIterator<(String, V)> for SortedMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(vars: I) -> Self {
        let mut vars: Vec<_> = vars.into_iter().collect();
        // Stable, so among equal names the last given is last.
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.reverse();
        vars.dedup_by(|later, earlier| later.0 == earlier.0);
        vars.reverse();
        vars.shrink_to_fit();
        SortedMap { vars }
    }
}

impl<'a, V> IntoIterator for &'a SortedMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, V)>,
        fn(&'a (String, V)) -> (&'a String, &'a V),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.vars.iter().map(|(name, value)| (name, value))
    }
}

impl<V: Serialize> Serialize for SortedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SortedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, V>::deserialize(deserializer)?;
        Ok(map.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> CommandTemplate {
        CommandTemplate::parse(text).expect("a valid template")
    }

    #[test]
    fn serializes_as_a_btreemap_does() {
        let given = [("b", "2"), ("a", "1 {group}"), ("c", "3"), ("a", "again")];
        let env: Env = given
            .iter()
            .map(|(n, v)| (n.to_string(), template(v)))
            .collect();
        let map: BTreeMap<String, CommandTemplate> = given
            .iter()
            .map(|(n, v)| (n.to_string(), template(v)))
            .collect();
        let json = serde_json::to_string(&env).expect("serializes");
        assert_eq!(json, serde_json::to_string(&map).expect("serializes"));
        let back: Env = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, env);
        assert_eq!(env.get("a"), Some(&template("again")));
        assert_eq!(env.get("z"), None);
        let names: Vec<&String> = env.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
