//! Raw manifest -> checked `Manifest`. Collects every problem rather than stopping at the first,
//! each located in the document (ripgrep's config reader does the same for its lines).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::error::{Diagnostic, did_you_mean, key_path};
use super::interpolate::{Environment, Missing, interpolate_value};
use super::model::{
    ApplyWhen, AttributeMapping, Deprovision, FileConfig, GENESYS_USER_SCHEMA, GraphConfig, GraphCredential,
    GroupPairing, GroupSelector, LdapConfig, Manifest, Profile, ReadLimits, SetGroupRule, SetMapping, SetShape,
    SetWrite, SourceConfig, TargetAuth, TargetConfig, TargetGroupRef, UserMapping,
};
use crate::manifest::raw::{
    LdapScope, RawAuth, RawFileSource, RawGraphSource, RawGroupPairing, RawGroupSelector, RawLdapSource, RawMapping,
    RawSet, RawTarget, RawUsers, SOURCE_KINDS,
};
use crate::mapping::Mapping;
use crate::scim::ScimPath;
use crate::secret::Secret;
use crate::yaml::{Location, Node, NodeKind, Segment};

const RAW_MAPPING_EXPECTED: &str =
    "a source attribute name, a template, a boolean, a number, or a mapping with `from`, `constant` or `reference`";

const TOP_LEVEL_KEYS: &[&str] = &["version", "name", "sources", "target", "users", "groups"];

/// Core User attributes (RFC 7643 §4.1) a manifest may map.
const USER_ATTRIBUTES: &[&str] = &[
    "userName",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "password",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "entitlements",
    "roles",
    "x509Certificates",
];
const NAME_SUB_ATTRIBUTES: &[&str] =
    &["formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"];
const MULTI_VALUED_SUB_ATTRIBUTES: &[&str] = &[
    "value",
    "display",
    "type",
    "primary",
    "formatted",
    "streetAddress",
    "locality",
    "region",
    "postalCode",
    "country",
];

fn key(k: &str) -> Segment {
    Segment::Key(k.to_owned())
}

struct Checker<'a> {
    root: &'a Node,
    base_dir: &'a Path,
    diagnostics: Vec<Diagnostic>,
    /// Values that came from `${…}`, by key path: their errors never echo the value.
    interpolated: BTreeSet<String>,
    /// Values whose `${…}` could not be resolved, by key path: nothing can be checked of them.
    unresolved: BTreeSet<String>,
}

/// What stopped a manifest: its errors, and its warnings.
type Problems = (Vec<Diagnostic>, Vec<Diagnostic>);

/// Checks a parsed document and builds the model with the problems that do not stop it (an
/// unresolved `${…}` under `Missing::Warning`), or returns every problem found.
pub fn validate(
    root: &Node,
    env: &dyn Environment,
    base_dir: &Path,
    missing: Missing,
) -> Result<(Manifest, Vec<Diagnostic>), Problems> {
    let mut root = root.clone();
    let mut interpolation = Interpolation::default();
    interpolation.walk(&mut root, &mut Vec::new(), env);
    let mut checker = Checker {
        root: &root,
        base_dir,
        diagnostics: Vec::new(),
        interpolated: interpolation.interpolated,
        unresolved: interpolation.unresolved,
    };
    let manifest = checker.manifest();
    let mut diagnostics = checker.diagnostics;
    let mut warnings = Vec::new();
    match missing {
        Missing::Error => diagnostics.extend(interpolation.problems),
        Missing::Warning => warnings = interpolation.problems,
    }
    for list in [&mut diagnostics, &mut warnings] {
        list.sort_by(|a, b| (a.location, &a.message).cmp(&(b.location, &b.message)));
        list.dedup();
    }
    match manifest {
        Some(manifest) if diagnostics.is_empty() => Ok((manifest, warnings)),
        _ => Err((diagnostics, warnings)),
    }
}

/// The interpolation of every scalar value of a document (keys are structure, not values).
#[derive(Default)]
struct Interpolation {
    problems: Vec<Diagnostic>,
    interpolated: BTreeSet<String>,
    unresolved: BTreeSet<String>,
}

impl Interpolation {
    fn walk(&mut self, node: &mut Node, path: &mut Vec<Segment>, env: &dyn Environment) {
        match &mut node.kind {
            NodeKind::Scalar { text, .. } => {
                if !text.contains('$') {
                    return;
                }
                let (value, problems) = interpolate_value(&text.clone(), env);
                let at = key_path(path);
                for problem in problems {
                    self.problems.push(Diagnostic {
                        location: node.location_within(problem.offset),
                        key_path: at.clone(),
                        message: problem.message,
                        hint: problem.hint,
                        width: Some(problem.len),
                    });
                    self.unresolved.insert(at.clone());
                }
                if let NodeKind::Scalar { text, quoted, .. } = &mut node.kind
                    && value != *text
                {
                    // An interpolated value is a string, whatever it looks like (a password
                    // of digits stays a string, and never shows in a type error).
                    *text = value;
                    *quoted = true;
                    self.interpolated.insert(at);
                }
            }
            NodeKind::Seq(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    path.push(Segment::Index(index));
                    self.walk(item, path, env);
                    path.pop();
                }
            }
            NodeKind::Map(entries) => {
                for (k, value) in entries.iter_mut() {
                    path.push(Segment::Key(k.text.clone()));
                    self.walk(value, path, env);
                    path.pop();
                }
            }
        }
    }
}

mod groups;
mod scope;
mod sets;
mod sources;
mod target;
mod users;

impl Checker<'_> {
    pub(super) fn report(
        &mut self,
        location: Location,
        path: &[Segment],
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        if self.unresolved.contains(&key_path(path)) {
            // Its value is not known here (an unset variable, reported as such).
            return;
        }
        self.diagnostics.push(Diagnostic {
            location,
            key_path: key_path(path),
            message: message.into(),
            hint,
            width: None,
        });
    }

    /// Reports a problem at the node `path` names.
    pub(super) fn report_at(&mut self, path: &[Segment], message: impl Into<String>, hint: Option<String>) {
        let location = self.node(path).location;
        self.report(location, path, message, hint);
    }

    pub(super) fn node(&self, path: &[Segment]) -> &Node {
        self.root.descend(path)
    }

    pub(super) fn manifest(&mut self) -> Option<Manifest> {
        if !matches!(self.root.kind, NodeKind::Map(_)) {
            self.report(
                self.root.location,
                &[],
                "a manifest must be a mapping with `version`, `sources`, `target` and `users`",
                None,
            );
            return None;
        }
        for (k, _) in self.root.entries() {
            if !TOP_LEVEL_KEYS.contains(&k.text.as_str()) {
                let hint = did_you_mean(&k.text, TOP_LEVEL_KEYS.iter().copied());
                self.report(k.location, &[key(&k.text)], format!("unknown key `{}`", k.text), hint);
            }
        }
        for required in ["version", "sources", "target", "users"] {
            if self.root.get(required).is_none() {
                self.report(self.root.location, &[], format!("missing key `{required}`"), None);
            }
        }
        let version: Option<u32> = self.root.get("version").and_then(|_| self.deserialize(&[key("version")]));
        if let Some(v) = version.filter(|v| *v != 1) {
            let at = self.node(&[key("version")]).location;
            self.report(
                at,
                &[key("version")],
                format!("unsupported manifest version `{v}`"),
                Some("this scimform reads version 1".into()),
            );
        }
        let sources = self.sources();
        let target = self.root.get("target").and_then(|_| self.target());
        let users = self.root.get("users").and_then(|_| self.users());
        let (groups, group_patterns) = self.groups();
        self.graph_reads(&sources, users.as_ref(), &groups);
        if let Some(users) = &users {
            self.graph_scope(&sources, users);
        }
        let name = self.root.get("name").and_then(|_| self.deserialize::<String>(&[key("name")]));
        Some(Manifest { name, sources, target: target?, users: users?, groups, group_patterns, sha256: String::new() })
    }

    /// Deserializes the node at `path`, reporting a located error on failure.
    pub(super) fn deserialize<T: DeserializeOwned>(&mut self, path: &[Segment]) -> Option<T> {
        let json = self.node(path).to_json();
        self.deserialize_value(path, json)
    }

    pub(super) fn report_serde(&mut self, path: &[Segment], message: &str) {
        if let Some((field, expected)) = parse_unknown_field(message) {
            let mut container = path.to_vec();
            if container.last() == Some(&Segment::Key(field.clone())) {
                container.pop();
            }
            let node = self.node(&container);
            let location = node.key(&field).map_or(node.location, |k| k.location);
            container.push(Segment::Key(field.clone()));
            let hint = did_you_mean(&field, expected.iter().map(String::as_str))
                .or_else(|| (!expected.is_empty()).then(|| format!("expected one of {}", backticked(&expected))));
            self.report(location, &container, format!("unknown key `{field}`"), hint);
            return;
        }
        let location = self.node(path).location;
        if self.interpolated.contains(&key_path(path)) {
            // serde's message quotes the value, which may be a secret.
            let expected = message.split_once(", expected ").map_or("another kind of value", |(_, e)| e);
            let message = format!("the value `${{…}}` gives here is not valid: expected {expected}");
            self.report(location, path, message, None);
            return;
        }
        self.report(location, path, message.to_owned(), None);
    }

    pub(super) fn relative_path(&self, path: &str) -> PathBuf {
        self.base_dir.join(path)
    }

    /// Deserializes `json`, which stands at `path` in the document, reporting a located error.
    ///
    /// A shape error does not hide the rest of the section: the offending key is reported, left
    /// out and the section read again (defaults standing in), so the semantic checks of the
    /// other keys still run. Only a missing required key stops it.
    pub(super) fn deserialize_value<T: DeserializeOwned>(
        &mut self,
        path: &[Segment],
        json: serde_json::Value,
    ) -> Option<T> {
        let mut json = json;
        let mut removed: Vec<Vec<Segment>> = Vec::new();
        for _ in 0..32 {
            let error = match serde_path_to_error::deserialize::<_, T>(json.clone()) {
                Ok(value) => return Some(value),
                Err(error) => error,
            };
            let mut relative = Vec::new();
            for segment in error.path() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => relative.push(Segment::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => relative.push(Segment::Key(key.clone())),
                    _ => {}
                }
            }
            let message = error.inner().to_string();
            if let Some(field) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
                // A required key left out here because its value was wrong is reported already.
                let mut at = relative.clone();
                at.push(Segment::Key(field.to_owned()));
                if !removed.contains(&at) {
                    self.report_serde(&[path, &relative].concat(), &message);
                }
                return None;
            }
            self.report_serde(&[path, &relative].concat(), &message);
            if let Some((field, _)) = parse_unknown_field(&message)
                && relative.last() != Some(&Segment::Key(field.clone()))
            {
                relative.push(Segment::Key(field));
            }
            if !remove_at(&mut json, &relative) {
                return None;
            }
            removed.push(relative);
        }
        None
    }

    /// A number that must lie in `range`: `key `n` is out of range`, hint `use a to b{why}`.
    pub(super) fn check_range(
        &mut self,
        path: &[Segment],
        value: u32,
        range: std::ops::RangeInclusive<u32>,
        why: &str,
    ) {
        if range.contains(&value) {
            return;
        }
        let name = match path.last() {
            Some(Segment::Key(k)) => k.clone(),
            _ => "the value".to_owned(),
        };
        let location = self.node(path).location;
        let hint = format!("use {} to {}{why}", range.start(), range.end());
        self.report(location, path, format!("{name} `{value}` is out of range"), Some(hint));
    }
}

/// Checks a mapped user attribute against RFC 7643's User schema (extension attributes are
/// accepted as written). Returns the problem and a hint.
fn check_user_attribute(path: &ScimPath) -> Option<(String, Option<String>)> {
    if path.schema().is_some() {
        return None;
    }
    let name = path.attribute_name();
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "id" | "meta" => return Some((format!("`{name}` is assigned by the server and cannot be mapped"), None)),
        "externalid" => {
            return Some((
                "`externalId` holds scimform's ownership marker".into(),
                Some("set it with `users.external_id`".into()),
            ));
        }
        "groups" => {
            return Some((
                "`groups` is read-only on users".into(),
                Some("manage membership with `groups:` pairings".into()),
            ));
        }
        _ => {}
    }
    if !USER_ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(name)) {
        return Some((format!("unknown SCIM attribute `{name}`"), did_you_mean(name, USER_ATTRIBUTES.iter().copied())));
    }
    if path.filter().is_some() && path.sub_attribute().is_none() {
        return Some((
            format!("`{path}` selects a whole element; map one of its sub-attributes"),
            Some(format!("for example `{path}.value`")),
        ));
    }
    if let Some(sub) = path.sub_attribute() {
        let allowed = if lower == "name" { NAME_SUB_ATTRIBUTES } else { MULTI_VALUED_SUB_ATTRIBUTES };
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
            return Some((
                format!("`{name}` has no sub-attribute `{sub}`"),
                did_you_mean(sub, allowed.iter().copied()),
            ));
        }
    }
    None
}

/// Removes the object key at `path` in `json`; false when there is none.
fn remove_at(json: &mut serde_json::Value, path: &[Segment]) -> bool {
    let Some((Segment::Key(last), parents)) = path.split_last() else { return false };
    let mut node = json;
    for segment in parents {
        let next = match (segment, node) {
            (Segment::Key(k), serde_json::Value::Object(map)) => map.get_mut(k),
            (Segment::Index(i), serde_json::Value::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(next) => node = next,
            None => return false,
        }
    }
    node.as_object_mut().is_some_and(|map| map.remove(last).is_some())
}

/// Reads serde's "unknown field \`x\`, expected one of \`a\`, \`b\`" into `("x", ["a", "b"])`.
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).map(str::to_owned).collect();
    Some((field.to_owned(), expected))
}

fn backticked<S: AsRef<str>>(items: &[S]) -> String {
    items.iter().map(|s| format!("`{}`", s.as_ref())).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
