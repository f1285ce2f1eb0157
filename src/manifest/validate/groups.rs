//! `groups`: the pairings, their source and target groups, and what a Graph source may be asked for.

use crate::manifest::model::GroupPattern;

use super::{
    BTreeMap, BTreeSet, Checker, GroupPairing, GroupSelector, Mapping, NodeKind, RawGroupPairing, RawGroupSelector,
    ScimPath, Segment, SourceConfig, TargetGroupRef, UserMapping, key,
};

impl Checker<'_> {
    pub(super) fn groups(&mut self) -> (Vec<GroupPairing>, Vec<GroupPattern>) {
        let mut pairings = Vec::new();
        let mut patterns = Vec::new();
        let Some(node) = self.root.get("groups") else { return (pairings, patterns) };
        let NodeKind::Seq(items) = &node.kind else {
            self.report(node.location, &[key("groups")], "`groups` must be a list of pairings", None);
            return (pairings, patterns);
        };
        let mut names = BTreeSet::new();
        for index in 0..items.len() {
            let path = [key("groups"), Segment::Index(index)];
            let Some(raw) = self.deserialize::<RawGroupPairing>(&path) else { continue };
            self.source_reference(&[key("groups"), Segment::Index(index), key("source")], &raw.source);
            if !names.insert(raw.name.clone()) {
                let p = [key("groups"), Segment::Index(index), key("name")];
                self.report_at(&p, format!("group pairing `{}` is declared twice", raw.name), None);
            }
            let pattern = raw.from.name_matches.as_ref().map(|text| self.group_pattern(&raw, text, index));
            let from = if pattern.is_some() {
                Some(GroupSelector::Name(String::new()))
            } else {
                self.group_selector(&raw.from, &[key("groups"), Segment::Index(index), key("from")])
            };
            let to = match (&raw.to.id, &raw.to.display_name) {
                (None, Some(_)) if pattern.is_some() => Some(TargetGroupRef::DisplayName(String::new())),
                (Some(id), None) => Some(TargetGroupRef::Id(id.clone())),
                (None, Some(name)) => Some(TargetGroupRef::DisplayName(name.clone())),
                _ => {
                    let p = [key("groups"), Segment::Index(index), key("to")];
                    self.report_at(&p, "`to` needs exactly one of `id` and `display_name`", None);
                    None
                }
            };
            let member_key = match &raw.member_key {
                None => Some(None),
                Some(text) => match Mapping::parse(text) {
                    Ok(m) => Some(Some(m)),
                    Err(error) => {
                        let p = [key("groups"), Segment::Index(index), key("member_key")];
                        let location = self.node(&p).location_within(error.offset);
                        self.report(location, &p, format!("invalid `member_key`: {error}"), None);
                        None
                    }
                },
            };
            if raw.create && raw.to.display_name.is_none() {
                let p = [key("groups"), Segment::Index(index), key("to")];
                self.report_at(&p, "`create: true` needs `to: { display_name: ... }`, the name to create", None);
            }
            if raw.members_per_request == Some(0) {
                let p = [key("groups"), Segment::Index(index), key("members_per_request")];
                self.report_at(&p, "members_per_request must be at least 1", None);
            }
            if let Some(p) = raw.max_removals_percent.filter(|p| !(0.0..=100.0).contains(p)) {
                let at = [key("groups"), Segment::Index(index), key("max_removals_percent")];
                self.report_at(
                    &at,
                    format!("max_removals_percent `{p}` is not a percentage"),
                    Some("use 0 to 100".into()),
                );
            }
            let members_per_operation = raw.members_per_operation.unwrap_or(100);
            if members_per_operation == 0 {
                let p = [key("groups"), Segment::Index(index), key("members_per_operation")];
                self.report_at(&p, "members_per_operation must be at least 1", None);
            }
            if let (Some(from), Some(to), Some(member_key)) = (from, to, member_key) {
                let pairing = GroupPairing {
                    name: raw.name,
                    source: raw.source,
                    from,
                    to,
                    method: raw.method,
                    nested: raw.nested,
                    member_key,
                    members_per_operation: usize::try_from(members_per_operation.max(1)).unwrap_or(100),
                    members_per_request: raw.members_per_request.and_then(|n| usize::try_from(n.max(1)).ok()),
                    create: raw.create,
                    max_removals: crate::manifest::model::Limit {
                        max: raw.max_removals.map(|m| m as usize),
                        max_percent: raw.max_removals_percent,
                    },
                };
                match pattern {
                    Some(Some((regex, to))) => patterns.push(GroupPattern {
                        name: pairing.name.clone(),
                        source: pairing.source.clone(),
                        pattern: regex,
                        to,
                        template: pairing,
                    }),
                    Some(None) => {}
                    None => pairings.push(pairing),
                }
            }
        }
        (pairings, patterns)
    }

    /// A pairing with `from.name_matches`: the pattern compiles, `name` and `to.display_name`
    /// fill only capture groups it has, and `name` tells its pairings apart.
    fn group_pattern(&mut self, raw: &RawGroupPairing, text: &str, index: usize) -> Option<(regex::Regex, String)> {
        let here = [key("groups"), Segment::Index(index)];
        let from = &raw.from;
        if from.id.is_some() || from.name.is_some() || from.dn.is_some() {
            let at = [&here[..], &[key("from")]].concat();
            self.report_at(&at, "`from` needs exactly one of `id`, `name`, `dn` and `name_matches`", None);
            return None;
        }
        let at = [&here[..], &[key("from"), key("name_matches")]].concat();
        let regex = match regex::RegexBuilder::new(text).size_limit(1 << 20).build() {
            Ok(regex) => regex,
            Err(error) => {
                self.report_at(&at, format!("invalid regular expression: {error}"), None);
                return None;
            }
        };
        let Some(to) = raw.to.display_name.clone().filter(|_| raw.to.id.is_none()) else {
            let at = [&here[..], &[key("to")]].concat();
            self.report_at(&at, "a pattern's `to` is a `display_name` (with `{{ match.1 }}`), one per match", None);
            return None;
        };
        let groups = regex.captures_len() - 1;
        for (field, value) in [("name", &raw.name), ("to", &to)] {
            let at = if field == "to" {
                [&here[..], &[key("to"), key("display_name")]].concat()
            } else {
                [&here[..], &[key("name")]].concat()
            };
            let holes = match_holes(value);
            if let Some(bad) = holes.iter().find(|h| h.is_none_or(|n| n > groups)) {
                let hole = bad.map_or_else(
                    || "a hole other than `{{ match.N }}`".to_owned(),
                    |n| format!("`{{{{ match.{n} }}}}`"),
                );
                self.report_at(
                    &at,
                    format!("`{value}` has {hole}, and the pattern has {groups} capture group(s)"),
                    Some("fill it with `{{ match.1 }}` … up to the pattern's capture groups".into()),
                );
                return None;
            }
            if field == "name" && holes.is_empty() {
                self.report_at(
                    &at,
                    format!("every pairing of pattern `{text}` would be named `{value}`"),
                    Some("name them apart with `{{ match.1 }}`".into()),
                );
                return None;
            }
        }
        Some((regex, to))
    }

    /// A source group selector: exactly one of `id`, `name` and `dn`.
    pub(super) fn group_selector(&mut self, raw: &RawGroupSelector, path: &[Segment]) -> Option<GroupSelector> {
        match (&raw.id, &raw.name, &raw.dn) {
            (Some(id), None, None) => Some(GroupSelector::Id(id.clone())),
            (None, Some(name), None) => Some(GroupSelector::Name(name.clone())),
            (None, None, Some(dn)) => Some(GroupSelector::Dn(dn.clone())),
            _ => {
                let location = self.node(path).location;
                let field = match path.last() {
                    Some(Segment::Key(k)) => k.as_str(),
                    _ => "the group",
                };
                self.report(location, path, format!("`{field}` needs exactly one of `id`, `name` and `dn`"), None);
                None
            }
        }
    }

    /// Checks every name a mapping reads from a Graph source against Graph's user properties
    /// (see `graph_properties`), located at the name within the mapping's text.
    pub(super) fn graph_reads(
        &mut self,
        sources: &BTreeMap<String, SourceConfig>,
        users: Option<&UserMapping>,
        groups: &[GroupPairing],
    ) {
        let is_graph = |name: &str| matches!(sources.get(name), Some(SourceConfig::Graph(_)));
        let Some(users) = users else { return };
        let mut sites: Vec<(Vec<Segment>, &Mapping)> = Vec::new();
        if is_graph(&users.source) {
            for (k, value) in self.node(&[key("users"), key("attributes")]).entries() {
                let Ok(path) = ScimPath::parse(&k.text) else { continue };
                let Some(attribute) = users.attributes.iter().find(|a| a.path == path) else { continue };
                let mut at = vec![key("users"), key("attributes"), key(&k.text)];
                if let Some(field) = ["from", "reference"].into_iter().find(|f| value.get(f).is_some()) {
                    at.push(key(field));
                }
                sites.push((at, &attribute.mapping));
            }
            if let Some(external_id) = &users.external_id {
                sites.push((vec![key("users"), key("external_id")], external_id));
            }
            for (k, _) in self.node(&[key("users"), key("sets")]).entries() {
                let Ok(path) = ScimPath::parse(&k.text) else { continue };
                if let Some(from) = users.set(&path).and_then(|s| s.from.as_ref()) {
                    sites.push((vec![key("users"), key("sets"), key(&k.text), key("from")], from));
                }
            }
        }
        // Members of a Graph group are Graph users: their key is read from Graph too.
        let match_mapping = users.match_mapping();
        let items = match &self.node(&[key("groups")]).kind {
            NodeKind::Seq(items) => items.len(),
            _ => 0,
        };
        for index in 0..items {
            let here = [key("groups"), Segment::Index(index)];
            let name = self.node(&[&here[..], &[key("name")]].concat()).as_scalar().unwrap_or_default().to_owned();
            let Some(pairing) = groups.iter().find(|p| p.name == name && is_graph(&p.source)) else { continue };
            match &pairing.member_key {
                Some(member_key) => sites.push(([&here[..], &[key("member_key")]].concat(), member_key)),
                None => {
                    for read in match_mapping.map(Mapping::attributes).unwrap_or_default() {
                        if let Err((message, _)) = crate::manifest::graph_properties::check_user_read(read) {
                            self.report_at(&here,
                                format!("members of Graph source `{}` are keyed by the users' match mapping, which reads `{read}`: {message}", pairing.source),
                                Some("give the pairing a `member_key` that Graph members have, such as \"{{ userPrincipalName | lower }}\"".into()),
                            );
                        }
                    }
                }
            }
        }
        for (at, mapping) in sites {
            let node = self.node(&at);
            let text = node.as_scalar().unwrap_or_default().to_owned();
            let location = node.location;
            for read in mapping.attributes() {
                if let Err((message, hint)) = crate::manifest::graph_properties::check_user_read(read) {
                    let location = text.find(read).map_or(location, |offset| self.node(&at).location_within(offset));
                    self.report(location, &at, message, hint);
                    if let Some(last) = self.diagnostics.last_mut() {
                        last.width = Some(read.len());
                    }
                }
            }
        }
    }
}

/// The `{{ … }}` holes of a pattern pairing's text: `Some(N)` for `match.N`, `None` for anything
/// else.
fn match_holes(text: &str) -> Vec<Option<usize>> {
    let mut holes = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            holes.push(None);
            break;
        };
        let hole = rest[open + 2..open + close].trim();
        holes.push(hole.strip_prefix("match.").and_then(|n| n.parse().ok()));
        rest = &rest[open + close + 2..];
    }
    holes
}
