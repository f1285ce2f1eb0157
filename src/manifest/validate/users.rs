//! `users`: the user mapping, its attributes and their mappings, the match and the marker.

use crate::manifest::raw::RawMatch;

use crate::manifest::model::DeprovisionAction;

use super::{
    ApplyWhen, AttributeMapping, BTreeMap, BTreeSet, Checker, Deprovision, Mapping, Node, NodeKind,
    RAW_MAPPING_EXPECTED, RawMapping, RawUsers, ScimPath, Segment, UserMapping, check_user_attribute, key,
};

impl Checker<'_> {
    pub(super) fn users(&mut self) -> Option<UserMapping> {
        let path = [key("users")];
        // Each attribute is checked on its own, so one bad mapping does not hide the others:
        // the section is deserialized with its `attributes` emptied.
        let users_node = self.node(&path).clone();
        let attributes_node = users_node.get("attributes").cloned();
        if let Some(node) = attributes_node.as_ref().filter(|n| !matches!(n.kind, NodeKind::Map(_))) {
            self.report(
                node.location,
                &[key("users"), key("attributes")],
                "`attributes` must map SCIM paths to mappings",
                None,
            );
        }
        let mut section = users_node.to_json();
        if let Some(attributes) = section.get_mut("attributes") {
            *attributes = serde_json::json!({});
        }
        let raw: Option<RawUsers> = self.deserialize_value(&path, section);
        if let Some(raw) = &raw {
            self.source_reference(&[key("users"), key("source")], &raw.source);
        }
        let attributes_node =
            attributes_node.unwrap_or(Node { location: users_node.location, kind: NodeKind::Map(Vec::new()) });
        let mut attributes = Vec::new();
        let mut seen = BTreeSet::new();
        for (k, value_node) in attributes_node.entries() {
            let attr_path = [key("users"), key("attributes"), key(&k.text)];
            let scim_path = match ScimPath::parse(&k.text) {
                Ok(p) => p,
                Err(error) => {
                    self.report(
                        k.location_within(error.offset),
                        &attr_path,
                        format!("invalid SCIM path `{}`: {error}", k.text),
                        None,
                    );
                    continue;
                }
            };
            if let Some((message, hint)) = check_user_attribute(&scim_path) {
                self.report(k.location, &attr_path, message, hint);
                continue;
            }
            if !seen.insert(scim_path.clone()) {
                self.report(
                    k.location,
                    &attr_path,
                    format!("`{}` is mapped twice (SCIM names ignore case)", k.text),
                    None,
                );
                continue;
            }
            if matches!(value_node.kind, NodeKind::Seq(_)) {
                // serde would read a list positionally into the long form; say what is expected.
                self.report(value_node.location, &attr_path, RAW_MAPPING_EXPECTED, None);
                continue;
            }
            let Some(raw_mapping) = self.deserialize::<RawMapping>(&attr_path) else { continue };
            if let Some((mapping, on_empty)) = self.mapping(&attr_path, value_node, &raw_mapping) {
                let apply = match &raw_mapping {
                    RawMapping::Full(spec) => spec.apply.unwrap_or_default(),
                    _ => ApplyWhen::Always,
                };
                attributes.push(AttributeMapping { path: scim_path, mapping, on_empty, apply });
            }
        }
        attributes.sort_by(|a, b| a.path.cmp(&b.path));
        let raw = raw?;
        let match_paths = self.match_paths(raw.match_attribute.as_ref(), &attributes, &seen);
        let match_path = match_paths.as_ref().and_then(|paths| paths.first().cloned());
        let external_id = match &raw.external_id {
            None => Some(None),
            Some(text) => {
                let p = [key("users"), key("external_id")];
                match Mapping::parse(text) {
                    Ok(m) => Some(Some(m)),
                    Err(error) => {
                        let location = self.node(&p).location_within(error.offset);
                        self.report(location, &p, format!("invalid `external_id`: {error}"), None);
                        None
                    }
                }
            }
        };
        let mut deprovision = Deprovision::default();
        if let Some(d) = &raw.deprovision {
            deprovision.action = d.action;
            deprovision.max = d.max.map(|m| m as usize);
            deprovision.max_percent = d.max_percent;
            deprovision.out_of_scope = d.out_of_scope.unwrap_or_default();
            deprovision.delete_after_days = d.delete_after_days;
            let disables =
                d.action == DeprovisionAction::Disable || deprovision.out_of_scope == DeprovisionAction::Disable;
            if d.delete_after_days.is_some() && !disables {
                let path = [key("users"), key("deprovision"), key("delete_after_days")];
                self.report_at(
                    &path,
                    "`delete_after_days` deletes users scimform disabled, and this manifest disables none",
                    Some("use it with `action: disable` (or `out_of_scope: disable`)".into()),
                );
            }
            if d.delete_after_days == Some(0) {
                let path = [key("users"), key("deprovision"), key("delete_after_days")];
                self.report_at(&path, "`delete_after_days` must be at least 1", Some("or use `action: delete`".into()));
            }
            if let Some(p) = d.max_percent.filter(|p| !(0.0..=100.0).contains(p)) {
                let path = [key("users"), key("deprovision"), key("max_percent")];
                self.report_at(&path, format!("max_percent `{p}` is not a percentage"), Some("use 0 to 100".into()));
            }
        }
        let sets = self.sets(&raw.sets, &seen);
        let scope = self.scope(raw.scope.as_ref());
        let attribute_limits = self.attribute_limits(raw.limits.as_ref(), &seen, &sets);
        Some(UserMapping {
            source: raw.source,
            match_path: match_path?,
            match_paths: match_paths?,
            external_id: external_id?,
            attributes,
            create_disabled: raw.create_disabled,
            deprovision,
            sets,
            scope,
            attribute_limits,
        })
    }

    /// `users.limits.attribute_changes`: each a managed attribute, with a percentage that is one.
    fn attribute_limits(
        &mut self,
        raw: Option<&crate::manifest::raw::RawLimits>,
        mapped: &BTreeSet<ScimPath>,
        sets: &[crate::manifest::model::SetMapping],
    ) -> BTreeMap<ScimPath, crate::manifest::model::Limit> {
        let mut limits = BTreeMap::new();
        for (text, limit) in raw.map(|r| &r.attribute_changes).into_iter().flatten() {
            let at = [key("users"), key("limits"), key("attribute_changes"), key(text)];
            let Ok(path) = ScimPath::parse(text) else {
                self.report_at(&at, format!("invalid SCIM path `{text}`"), None);
                continue;
            };
            if !mapped.contains(&path) && !sets.iter().any(|s| s.path == path) {
                self.report_at(
                    &at,
                    format!("`{text}` is not managed, so no plan changes it"),
                    Some("limit an attribute mapped under `users.attributes` or `users.sets`".into()),
                );
                continue;
            }
            if let Some(p) = limit.max_percent.filter(|p| !(0.0..=100.0).contains(p)) {
                let p_at = [&at[..], &[key("max_percent")]].concat();
                self.report_at(&p_at, format!("max_percent `{p}` is not a percentage"), Some("use 0 to 100".into()));
            }
            let max = limit.max.map(|m| m as usize);
            limits.insert(path, crate::manifest::model::Limit { max, max_percent: limit.max_percent });
        }
        limits
    }

    /// `users.match`: one SCIM path or several in order (default `userName`), each mapped, none
    /// twice, none written only on create.
    fn match_paths(
        &mut self,
        raw: Option<&RawMatch>,
        attributes: &[AttributeMapping],
        mapped: &BTreeSet<ScimPath>,
    ) -> Option<Vec<ScimPath>> {
        let texts: Vec<(String, Vec<Segment>)> = match raw {
            None => vec![("userName".into(), vec![key("users"), key("attributes")])],
            Some(RawMatch::One(text)) => vec![(text.clone(), vec![key("users"), key("match")])],
            Some(RawMatch::InOrder(texts)) if texts.is_empty() => {
                self.report_at(&[key("users"), key("match")], "`match` needs at least one SCIM path", None);
                return None;
            }
            Some(RawMatch::InOrder(texts)) => texts
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), vec![key("users"), key("match"), Segment::Index(i)]))
                .collect(),
        };
        let mut paths = Vec::new();
        let mut ok = true;
        for (text, at) in texts {
            let path = match ScimPath::parse(&text) {
                Ok(path) => path,
                Err(error) => {
                    let location = self.node(&at).location_within(error.offset);
                    self.report(location, &at, format!("invalid SCIM path `{text}`: {error}"), None);
                    ok = false;
                    continue;
                }
            };
            if paths.contains(&path) {
                self.report_at(&at, format!("`{path}` is listed twice"), None);
                ok = false;
            } else if !mapped.contains(&path) {
                self.report_at(
                    &at,
                    format!("the match attribute `{path}` is not mapped"),
                    Some(format!("add a mapping for `{path}` under `users.attributes`")),
                );
            } else if attributes.iter().any(|a| a.path == path && a.apply == ApplyWhen::OnCreate) {
                let p = [key("users"), key("attributes"), key(&path.to_string()), key("apply")];
                self.report_at(
                    &p,
                    format!("the match attribute `{path}` is compared on every run: it cannot be `on_create`"),
                    Some("remove `apply: on_create` from it".into()),
                );
            }
            paths.push(path);
        }
        ok.then_some(paths)
    }

    pub(super) fn mapping(
        &mut self,
        path: &[Segment],
        node: &Node,
        raw: &RawMapping,
    ) -> Option<(Mapping, crate::manifest::raw::OnEmpty)> {
        let parse = |checker: &mut Self, text: &str, node: &Node, path: &[Segment]| match Mapping::parse(text) {
            Ok(m) => Some(m),
            Err(error) => {
                checker.report(node.location_within(error.offset), path, error.message, None);
                None
            }
        };
        match raw {
            RawMapping::Short(text) => parse(self, text, node, path).map(|m| (m, crate::manifest::raw::OnEmpty::Keep)),
            RawMapping::Bool(b) => {
                Some((Mapping::Constant(serde_json::Value::Bool(*b)), crate::manifest::raw::OnEmpty::Keep))
            }
            RawMapping::Number(n) => {
                Some((Mapping::Constant(serde_json::Value::Number(n.clone())), crate::manifest::raw::OnEmpty::Keep))
            }
            RawMapping::Full(spec) => {
                let on_empty = spec.on_empty.unwrap_or_default();
                match (&spec.from, &spec.constant, &spec.reference) {
                    (Some(from), None, None) => {
                        let from_path = [path, &[key("from")]].concat();
                        let from_node = node.get("from").unwrap_or(node).clone();
                        parse(self, from, &from_node, &from_path).map(|m| (m, on_empty))
                    }
                    (None, Some(constant), None) => Some((Mapping::Constant(constant.clone()), on_empty)),
                    (None, None, Some(attribute)) if crate::mapping::template::is_attribute_name(attribute) => {
                        Some((Mapping::Reference(attribute.clone()), on_empty))
                    }
                    (None, None, Some(attribute)) => {
                        let p = [path, &[key("reference")]].concat();
                        self.report_at(&p, format!("`{attribute}` is not a source attribute name"), None);
                        None
                    }
                    _ => {
                        self.report(
                            node.location,
                            path,
                            "a mapping needs exactly one of `from`, `constant` and `reference`",
                            None,
                        );
                        None
                    }
                }
            }
        }
    }
}
