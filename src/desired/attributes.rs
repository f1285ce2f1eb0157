//! A desired user's attribute values by path: a vector kept sorted by path, not a B-tree map. A
//! run holds 100,000 users with a handful of values each, and a tree's node is sized for eleven.

use std::ops::Index;

use serde_json::Value;

use crate::scim::ScimPath;

/// Values by path, in path order (the order a B-tree map would iterate in).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(Vec<(ScimPath, Value)>);

impl Attributes {
    /// Room for `capacity` values: a user gets as many as its mappings, and no more.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    pub fn get(&self, path: &ScimPath) -> Option<&Value> {
        self.0.binary_search_by(|(p, _)| p.cmp(path)).ok().map(|at| &self.0[at].1)
    }

    pub fn contains_key(&self, path: &ScimPath) -> bool {
        self.get(path).is_some()
    }

    /// Sets the value at `path`, returning the one it replaces.
    pub fn insert(&mut self, path: ScimPath, value: Value) -> Option<Value> {
        match self.0.binary_search_by(|(p, _)| p.cmp(&path)) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, value)),
            Err(at) => {
                self.0.insert(at, (path, value));
                None
            }
        }
    }

    /// The values in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&ScimPath, &Value)> {
        self.0.iter().map(|(path, value)| (path, value))
    }

    /// Keeps the values `keep` says to, and frees what the others took.
    pub fn retain(&mut self, mut keep: impl FnMut(&ScimPath, &Value) -> bool) {
        self.0.retain(|(path, value)| keep(path, value));
        self.0.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Index<&ScimPath> for Attributes {
    type Output = Value;

    /// # Panics
    /// When there is no value at `path` (as a map's index does).
    fn index(&self, path: &ScimPath) -> &Value {
        #[allow(clippy::expect_used)]
        self.get(path).expect("a value at the path")
    }
}

impl FromIterator<(ScimPath, Value)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (ScimPath, Value)>>(iter: I) -> Self {
        let mut attributes = Self::default();
        for (path, value) in iter {
            attributes.insert(path, value);
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    /// Whatever order values are set in, they read and iterate as a B-tree map of them would;
    /// a second value at a path replaces the first.
    #[test]
    fn values_read_and_iterate_as_a_map_would() {
        let paths = ["title", "userName", "name.givenName", "emails[type eq \"work\"].value", "Title", "active"];
        let mut attributes = Attributes::with_capacity(paths.len());
        let mut map = BTreeMap::new();
        for (i, text) in paths.iter().enumerate() {
            let path = ScimPath::parse(text).unwrap();
            assert_eq!(attributes.insert(path.clone(), json!(i)), map.insert(path, json!(i)), "{text}");
        }
        assert_eq!(attributes.len(), map.len());
        assert_eq!(attributes.len(), 5, "`Title` is `title`: paths compare without case");
        assert!(attributes.iter().eq(map.iter()), "in the map's order");
        for text in paths.iter().chain(&["nickName"]) {
            let path = ScimPath::parse(text).unwrap();
            assert_eq!(attributes.get(&path), map.get(&path), "{text}");
            assert_eq!(attributes.contains_key(&path), map.contains_key(&path), "{text}");
        }
        assert_eq!(attributes[&ScimPath::attribute("title")], json!(4));
        let collected: Attributes = map.clone().into_iter().rev().collect();
        assert_eq!(collected, attributes);
    }
}
