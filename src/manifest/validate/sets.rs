//! `users.sets`: multi-valued attributes managed as sets (skills, languages, roles).

use super::{
    BTreeMap, BTreeSet, Checker, GENESYS_USER_SCHEMA, Mapping, Node, RawSet, ScimPath, Segment, SetGroupRule,
    SetMapping, SetShape, SetWrite, key,
};

impl Checker<'_> {
    /// `users.sets`: each path must be a supported set, with entries from `from`, `groups` or
    /// both, and levels within the service's range.
    pub(super) fn sets(&mut self, raw: &BTreeMap<String, RawSet>, attributes: &BTreeSet<ScimPath>) -> Vec<SetMapping> {
        let genesys =
            self.root.get("target").and_then(|t| t.get("profile")).and_then(Node::as_scalar) == Some("genesys");
        let mut sets = Vec::new();
        for (text, set) in raw {
            let here = [key("users"), key("sets"), key(text)];
            let key_location =
                self.node(&[key("users"), key("sets")]).key(text).map_or(self.node(&here).location, |k| k.location);
            let path = match ScimPath::parse(text) {
                Ok(path) => path,
                Err(error) => {
                    self.report(key_location, &here, format!("invalid SCIM path `{text}`: {error}"), None);
                    continue;
                }
            };
            let Some(shape) = SetShape::of(&path) else {
                self.report(
                    key_location,
                    &here,
                    format!("`{text}` cannot be managed as a set"),
                    Some(format!("sets are `{GENESYS_USER_SCHEMA}:routingSkills`, `…:routingLanguages` and `roles`")),
                );
                continue;
            };
            if attributes.contains(&path) {
                self.report(
                    key_location,
                    &here,
                    format!("`{text}` is also mapped under `users.attributes`; map it in one place"),
                    None,
                );
                continue;
            }
            let from = set.from.as_ref().and_then(|text| {
                let p = [&here[..], &[key("from")]].concat();
                match Mapping::parse(text) {
                    Ok(m) => Some(m),
                    Err(error) => {
                        let location = self.node(&p).location_within(error.offset);
                        self.report(location, &p, error.message, None);
                        None
                    }
                }
            });
            if set.from.is_none() && set.groups.is_empty() {
                self.report(self.node(&here).location, &here, "a set needs `from`, `groups` or both", None);
            }
            let check_level = |checker: &mut Self, level: Option<f64>, p: &[Segment], required: bool| -> Option<f64> {
                match (shape.level, level) {
                    (Some(field), Some(value)) if !(shape.range.0..=shape.range.1).contains(&value) => {
                        let location = checker.node(p).location;
                        checker.report(
                            location,
                            p,
                            format!("{field} `{value}` is out of range"),
                            Some(format!("use {} to {}", shape.range.0, shape.range.1)),
                        );
                        None
                    }
                    (Some(field), None) if required => {
                        let location = checker.node(&p[..p.len() - 1]).location;
                        checker.report(
                            location,
                            &p[..p.len() - 1],
                            format!("missing `{field}`"),
                            Some(format!("give the entry's {field}, {} to {}", shape.range.0, shape.range.1)),
                        );
                        None
                    }
                    (None, Some(_)) => {
                        let location = checker.node(p).location;
                        checker.report(location, p, format!("`{text}` entries have no proficiency"), None);
                        None
                    }
                    (_, level) => level,
                }
            };
            let default_level =
                check_level(self, set.default_proficiency, &[&here[..], &[key("default_proficiency")]].concat(), false);
            let mut groups = Vec::new();
            for (index, group) in set.groups.iter().enumerate() {
                let gp = [&here[..], &[key("groups"), Segment::Index(index)]].concat();
                self.source_reference(&[&gp[..], &[key("source")]].concat(), &group.source);
                let Some(selector) = self.group_selector(&group.group, &[&gp[..], &[key("group")]].concat()) else {
                    continue;
                };
                let level = check_level(self, group.proficiency, &[&gp[..], &[key("proficiency")]].concat(), true);
                groups.push(SetGroupRule {
                    source: group.source.clone(),
                    group: selector,
                    nested: group.nested,
                    name: group.name.clone(),
                    level,
                });
            }
            let separator = set.separator.clone().unwrap_or_else(|| ";".into());
            if separator.is_empty() {
                let p = [&here[..], &[key("separator")]].concat();
                self.report_at(&p, "the separator is empty", None);
            }
            sets.push(SetMapping {
                path,
                shape,
                from,
                separator,
                default_level,
                groups,
                precedence: set.precedence.unwrap_or_default(),
                write: set.write.unwrap_or(if genesys { SetWrite::Replace } else { SetWrite::Minimal }),
                apply: set.apply.unwrap_or_default(),
            });
        }
        sets.sort_by(|a, b| a.path.cmp(&b.path));
        sets
    }
}
