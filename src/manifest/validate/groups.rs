//! `groups`: the pairings, their source and target groups, and what a Graph source may be asked for.

use super::{
    BTreeMap, BTreeSet, Checker, GroupPairing, GroupSelector, Mapping, NodeKind, RawGroupPairing, RawGroupSelector,
    ScimPath, Segment, SourceConfig, TargetGroupRef, UserMapping, key,
};

impl Checker<'_> {
    pub(super) fn groups(&mut self) -> Vec<GroupPairing> {
        let mut pairings = Vec::new();
        let Some(node) = self.root.get("groups") else { return pairings };
        let NodeKind::Seq(items) = &node.kind else {
            self.report(node.location, &[key("groups")], "`groups` must be a list of pairings", None);
            return pairings;
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
            let from = self.group_selector(&raw.from, &[key("groups"), Segment::Index(index), key("from")]);
            let to = match (&raw.to.id, &raw.to.display_name) {
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
                pairings.push(GroupPairing {
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
                });
            }
        }
        pairings
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
