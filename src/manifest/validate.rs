//! Raw manifest -> checked `Manifest`. Collects every problem rather than stopping at the first,
//! each located in the document (ripgrep's config reader does the same for its lines).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::error::{Diagnostic, did_you_mean, key_path};
use super::interpolate::{Environment, Missing, interpolate_value};
use super::model::{
    AttributeMapping, Deprovision, FileConfig, GENESYS_USER_SCHEMA, GraphConfig, GroupPairing, GroupSelector,
    LdapConfig, Manifest, Profile, ReadLimits, SetGroupRule, SetMapping, SetShape, SetWrite, SourceConfig, TargetAuth,
    TargetConfig, TargetGroupRef, UserMapping,
};
use super::raw::{
    LdapScope, RawAuth, RawFileSource, RawGraphSource, RawGroupPairing, RawGroupSelector, RawLdapSource, RawMapping,
    RawSet, RawTarget, RawUsers, SOURCE_KINDS,
};
use crate::mapping::Mapping;
use crate::scim::ScimPath;
use crate::secret::Secret;
use crate::yaml::{Location, Node, NodeKind, Segment};

const RAW_MAPPING_EXPECTED: &str =
    "a source attribute name, a template, a boolean, a number, or a mapping with `from`, `constant` or `reference`";

const TOP_LEVEL_KEYS: &[&str] = &["version", "sources", "target", "users", "groups"];

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

impl Checker<'_> {
    fn report(&mut self, location: Location, path: &[Segment], message: impl Into<String>, hint: Option<String>) {
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

    fn node(&self, path: &[Segment]) -> &Node {
        self.root.descend(path)
    }

    fn manifest(&mut self) -> Option<Manifest> {
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
        let groups = self.groups();
        self.graph_reads(&sources, users.as_ref(), &groups);
        Some(Manifest { sources, target: target?, users: users?, groups, sha256: String::new() })
    }

    /// Deserializes the node at `path`, reporting a located error on failure.
    fn deserialize<T: DeserializeOwned>(&mut self, path: &[Segment]) -> Option<T> {
        let json = self.node(path).to_json();
        self.deserialize_value(path, json)
    }

    fn report_serde(&mut self, path: &[Segment], message: &str) {
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

    fn relative_path(&self, path: &str) -> PathBuf {
        self.base_dir.join(path)
    }

    fn sources(&mut self) -> std::collections::BTreeMap<String, SourceConfig> {
        let mut sources = std::collections::BTreeMap::new();
        let Some(node) = self.root.get("sources") else { return sources };
        if !matches!(node.kind, NodeKind::Map(_)) {
            self.report(node.location, &[key("sources")], "`sources` must be a mapping of names to sources", None);
            return sources;
        }
        let names: Vec<String> = node.entries().iter().map(|(k, _)| k.text.clone()).collect();
        for name in names {
            let path = [key("sources"), key(&name)];
            if let Some(config) = self.source(&path) {
                sources.insert(name, config);
            }
        }
        sources
    }

    fn source(&mut self, path: &[Segment]) -> Option<SourceConfig> {
        let node = self.node(path);
        let location = node.location;
        let Some(kind_node) = node.get("kind") else {
            self.report(location, path, "missing key `kind`", Some(format!("one of {}", backticked(SOURCE_KINDS))));
            return None;
        };
        let kind = kind_node.as_scalar().unwrap_or_default().to_owned();
        let kind_location = kind_node.location;
        // Deserialize the variant's own struct so errors keep their exact key path.
        let mut fields = node.clone();
        if let NodeKind::Map(entries) = &mut fields.kind {
            entries.retain(|(k, _)| k.text != "kind");
        }
        let json = fields.to_json();
        let mut kind_path = path.to_vec();
        kind_path.push(key("kind"));
        match kind.as_str() {
            "file" => {
                let raw: RawFileSource = self.deserialize_value(path, json)?;
                Some(SourceConfig::File(FileConfig { path: self.relative_path(&raw.path) }))
            }
            "ldap" => {
                let raw: RawLdapSource = self.deserialize_value(path, json)?;
                Some(SourceConfig::Ldap(self.ldap(path, raw)))
            }
            "graph" => {
                let raw: RawGraphSource = self.deserialize_value(path, json)?;
                Some(SourceConfig::Graph(self.graph(raw)))
            }
            other => {
                let hint = did_you_mean(other, SOURCE_KINDS.iter().copied())
                    .or_else(|| Some(format!("one of {}", backticked(SOURCE_KINDS))));
                self.report(kind_location, &kind_path, format!("unknown source kind `{other}`"), hint);
                None
            }
        }
    }

    /// Deserializes `json`, which stands at `path` in the document, reporting a located error.
    ///
    /// A shape error does not hide the rest of the section: the offending key is reported, left
    /// out and the section read again (defaults standing in), so the semantic checks of the
    /// other keys still run. Only a missing required key stops it.
    fn deserialize_value<T: DeserializeOwned>(&mut self, path: &[Segment], json: serde_json::Value) -> Option<T> {
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
    fn check_range(&mut self, path: &[Segment], value: u32, range: std::ops::RangeInclusive<u32>, why: &str) {
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

    fn ldap(&mut self, path: &[Segment], raw: RawLdapSource) -> LdapConfig {
        let at = |k: &str| [path, &[key(k)]].concat();
        let page_size = raw.page_size.unwrap_or(500);
        self.check_range(&at("page_size"), page_size, 1..=1000, " (AD's MaxPageSize is 1000)");
        let timeout_seconds = raw.timeout_seconds.unwrap_or(30);
        self.check_range(&at("timeout_seconds"), timeout_seconds, 1..=3600, ", the seconds one operation may take");
        if !(raw.url.starts_with("ldap://") || raw.url.starts_with("ldaps://")) {
            let location = self.node(&at("url")).location;
            self.report(location, &at("url"), "an LDAP url must start with `ldap://` or `ldaps://`", None);
        }
        LdapConfig {
            url: raw.url,
            bind_dn: raw.bind_dn,
            password: Secret::new(raw.password),
            base_dn: raw.base_dn,
            filter: raw.filter,
            scope: raw.scope.unwrap_or(LdapScope::Sub),
            page_size,
            starttls: raw.starttls.unwrap_or(false),
            ca_file: raw.ca_file.map(|p| self.relative_path(&p)),
            allow_insecure: raw.allow_insecure.unwrap_or(false),
            timeout_seconds,
        }
    }

    fn graph(&self, raw: RawGraphSource) -> GraphConfig {
        GraphConfig {
            tenant_id: raw.tenant_id,
            client_id: raw.client_id,
            client_secret: Secret::new(raw.client_secret),
            authority: raw.authority,
            graph_url: raw.graph_url,
            filter: raw.filter,
            ca_file: raw.ca_file.map(|p| self.relative_path(&p)),
        }
    }

    fn target(&mut self) -> Option<TargetConfig> {
        let path = [key("target")];
        let raw: RawTarget = self.deserialize(&path)?;
        let at = |k: &[&str]| -> Vec<Segment> { path.iter().cloned().chain(k.iter().map(|k| key(k))).collect() };
        let region = raw.region.clone();
        if region.is_some() && raw.profile != Profile::Genesys {
            let location = self.node(&at(&["region"])).location;
            self.report(location, &at(&["region"]), "`region` applies to `profile: genesys` only", None);
        }
        // Genesys derives both URLs from the region; either may still be given (tests, proxies).
        let genesys_region = region.as_deref().filter(|_| raw.profile == Profile::Genesys);
        let base_url = match (&raw.base_url, genesys_region) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(region)) => Some(format!("https://api.{region}/api/v2/scim/v2")),
            (None, None) => {
                self.report(
                    self.node(&path).location,
                    &path,
                    "missing key `base_url`",
                    Some("give the SCIM base URL, or `profile: genesys` with `region`".into()),
                );
                None
            }
        };
        if let Some(url) = &base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            let location = self.node(&at(&["base_url"])).location;
            self.report(location, &at(&["base_url"]), "`base_url` must be an http:// or https:// URL", None);
        }
        let auth = match &raw.auth {
            RawAuth::BearerToken(token) => Some(TargetAuth::BearerToken(Secret::new(token.clone()))),
            RawAuth::Oauth2ClientCredentials(o) => {
                let token_url = match (&o.token_url, genesys_region) {
                    (Some(url), _) => Some(url.clone()),
                    (None, Some(region)) => Some(format!("https://login.{region}/oauth/token")),
                    (None, None) => {
                        let p = at(&["auth", "oauth2_client_credentials"]);
                        let location = self.node(&p).location;
                        self.report(
                            location,
                            &p,
                            "missing key `token_url`",
                            Some("give the OAuth2 token endpoint, or `profile: genesys` with `region`".into()),
                        );
                        None
                    }
                };
                token_url.map(|token_url| TargetAuth::OAuth2ClientCredentials {
                    token_url,
                    client_id: o.client_id.clone(),
                    client_secret: Secret::new(o.client_secret.clone()),
                    scope: o.scope.clone(),
                    client_auth: o.client_auth,
                })
            }
        };
        let concurrency = raw.concurrency.unwrap_or(4);
        self.check_range(&at(&["concurrency"]), concurrency, 1..=64, "");
        let max_attempts = raw.max_attempts.unwrap_or(5);
        self.check_range(&at(&["max_attempts"]), max_attempts, 1..=20, "");
        let timeout_seconds = raw.timeout_seconds.unwrap_or(30);
        self.check_range(&at(&["timeout_seconds"]), timeout_seconds, 1..=3600, ", the seconds one request may take");
        let max_response_mib = raw.max_response_mib.unwrap_or(32);
        self.check_range(&at(&["max_response_mib"]), max_response_mib, 1..=1024, "");
        let max_resources = raw.max_resources.unwrap_or(1_000_000);
        self.check_range(&at(&["max_resources"]), max_resources, 1..=100_000_000, "");
        if let Some(rate) = &raw.rate_limit
            && rate.requests_per_minute == 0
        {
            let p = at(&["rate_limit", "requests_per_minute"]);
            let location = self.node(&p).location;
            self.report(location, &p, "requests_per_minute must be at least 1", None);
        }
        Some(TargetConfig {
            profile: raw.profile,
            base_url: base_url?.trim_end_matches('/').to_owned(),
            auth: auth?,
            concurrency: usize::try_from(concurrency).unwrap_or(4),
            requests_per_minute: raw.rate_limit.map(|r| r.requests_per_minute).filter(|r| *r > 0),
            ca_file: raw.ca_file.as_ref().map(|p| self.relative_path(p)),
            timeout_seconds,
            max_attempts: max_attempts.clamp(1, 20),
            limits: ReadLimits {
                max_response_bytes: usize::try_from(max_response_mib).unwrap_or(32) * 1024 * 1024,
                max_resources: usize::try_from(max_resources).unwrap_or(1_000_000),
            },
        })
    }

    fn source_reference(&mut self, path: &[Segment], name: &str) {
        let declared = self.root.get("sources").is_some_and(|n| n.entries().iter().any(|(k, _)| k.text == name));
        if !declared {
            let candidates: Vec<String> = self
                .root
                .get("sources")
                .map(|n| n.entries().iter().map(|(k, _)| k.text.clone()).collect())
                .unwrap_or_default();
            let hint = did_you_mean(name, candidates.iter().map(String::as_str))
                .or_else(|| (!candidates.is_empty()).then(|| format!("declared sources: {}", backticked(&candidates))));
            let location = self.node(path).location;
            self.report(location, path, format!("source `{name}` is not declared under `sources`"), hint);
        }
    }

    fn users(&mut self) -> Option<UserMapping> {
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
                attributes.push(AttributeMapping { path: scim_path, mapping, on_empty });
            }
        }
        attributes.sort_by(|a, b| a.path.cmp(&b.path));
        let raw = raw?;
        let match_text = raw.match_attribute.clone().unwrap_or_else(|| "userName".into());
        let match_path = match ScimPath::parse(&match_text) {
            Ok(p) => Some(p),
            Err(error) => {
                let p = [key("users"), key("match")];
                let location = self.node(&p).location_within(error.offset);
                self.report(location, &p, format!("invalid SCIM path `{match_text}`: {error}"), None);
                None
            }
        };
        if let Some(match_path) = &match_path
            && !seen.contains(match_path)
        {
            let p = if raw.match_attribute.is_some() {
                vec![key("users"), key("match")]
            } else {
                vec![key("users"), key("attributes")]
            };
            let location = self.node(&p).location;
            self.report(
                location,
                &p,
                format!("the match attribute `{match_path}` is not mapped"),
                Some(format!("add a mapping for `{match_path}` under `users.attributes`")),
            );
        }
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
            if let Some(p) = d.max_percent.filter(|p| !(0.0..=100.0).contains(p)) {
                let path = [key("users"), key("deprovision"), key("max_percent")];
                let location = self.node(&path).location;
                self.report(
                    location,
                    &path,
                    format!("max_percent `{p}` is not a percentage"),
                    Some("use 0 to 100".into()),
                );
            }
        }
        let sets = self.sets(&raw.sets, &seen);
        Some(UserMapping {
            source: raw.source,
            match_path: match_path?,
            external_id: external_id?,
            attributes,
            create_disabled: raw.create_disabled,
            deprovision,
            sets,
        })
    }

    /// `users.sets`: each path must be a supported set, with entries from `from`, `groups` or
    /// both, and levels within the service's range.
    fn sets(&mut self, raw: &BTreeMap<String, RawSet>, attributes: &BTreeSet<ScimPath>) -> Vec<SetMapping> {
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
                let location = self.node(&p).location;
                self.report(location, &p, "the separator is empty", None);
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
            });
        }
        sets.sort_by(|a, b| a.path.cmp(&b.path));
        sets
    }

    fn mapping(&mut self, path: &[Segment], node: &Node, raw: &RawMapping) -> Option<(Mapping, super::raw::OnEmpty)> {
        let parse = |checker: &mut Self, text: &str, node: &Node, path: &[Segment]| match Mapping::parse(text) {
            Ok(m) => Some(m),
            Err(error) => {
                checker.report(node.location_within(error.offset), path, error.message, None);
                None
            }
        };
        match raw {
            RawMapping::Short(text) => parse(self, text, node, path).map(|m| (m, super::raw::OnEmpty::Keep)),
            RawMapping::Bool(b) => Some((Mapping::Constant(serde_json::Value::Bool(*b)), super::raw::OnEmpty::Keep)),
            RawMapping::Number(n) => {
                Some((Mapping::Constant(serde_json::Value::Number(n.clone())), super::raw::OnEmpty::Keep))
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
                        let location = self.node(&p).location;
                        self.report(location, &p, format!("`{attribute}` is not a source attribute name"), None);
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

    /// Checks every name a mapping reads from a Graph source against Graph's user properties
    /// (see `graph_properties`), located at the name within the mapping's text.
    fn graph_reads(
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
                        if let Err((message, _)) = super::graph_properties::check_user_read(read) {
                            let location = self.node(&here).location;
                            self.report(
                                location,
                                &here,
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
                if let Err((message, hint)) = super::graph_properties::check_user_read(read) {
                    let location = text.find(read).map_or(location, |offset| self.node(&at).location_within(offset));
                    self.report(location, &at, message, hint);
                    if let Some(last) = self.diagnostics.last_mut() {
                        last.width = Some(read.len());
                    }
                }
            }
        }
    }

    /// A source group selector: exactly one of `id`, `name` and `dn`.
    fn group_selector(&mut self, raw: &RawGroupSelector, path: &[Segment]) -> Option<GroupSelector> {
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

    fn groups(&mut self) -> Vec<GroupPairing> {
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
                let location = self.node(&p).location;
                self.report(location, &p, format!("group pairing `{}` is declared twice", raw.name), None);
            }
            let from = self.group_selector(&raw.from, &[key("groups"), Segment::Index(index), key("from")]);
            let to = match (&raw.to.id, &raw.to.display_name) {
                (Some(id), None) => Some(TargetGroupRef::Id(id.clone())),
                (None, Some(name)) => Some(TargetGroupRef::DisplayName(name.clone())),
                _ => {
                    let p = [key("groups"), Segment::Index(index), key("to")];
                    let location = self.node(&p).location;
                    self.report(location, &p, "`to` needs exactly one of `id` and `display_name`", None);
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
                let location = self.node(&p).location;
                self.report(location, &p, "`create: true` needs `to: { display_name: ... }`, the name to create", None);
            }
            if raw.members_per_request == Some(0) {
                let p = [key("groups"), Segment::Index(index), key("members_per_request")];
                let location = self.node(&p).location;
                self.report(location, &p, "members_per_request must be at least 1", None);
            }
            let members_per_operation = raw.members_per_operation.unwrap_or(100);
            if members_per_operation == 0 {
                let p = [key("groups"), Segment::Index(index), key("members_per_operation")];
                let location = self.node(&p).location;
                self.report(location, &p, "members_per_operation must be at least 1", None);
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
                });
            }
        }
        pairings
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
mod tests {
    use std::path::Path;

    use crate::manifest::{MapEnvironment, parse};

    const GOOD: &str = r#"version: 1
sources:
  hr: { kind: file, path: people.yaml }
target:
  kind: scim
  base_url: https://scim.example/v2
  auth: { bearer_token: "${env:TOKEN}" }
users:
  source: hr
  external_id: "hr-{{ id }}"
  attributes:
    userName: "{{ mail | lower }}"
    title: title
    active: "{{ not disabled }}"
groups:
  - { name: Support, source: hr, from: { id: s }, to: { id: g1 } }
"#;

    /// `(line:column, key path, message)` of every problem, or the empty list.
    fn problems(text: &str) -> Vec<(String, String, String)> {
        let env = MapEnvironment([("TOKEN".to_owned(), "t".to_owned())].into_iter().collect());
        match parse(text, "m.yaml", &env, Path::new("/etc/scimform")) {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics.into_iter().map(|d| (d.location.to_string(), d.key_path, d.message)).collect(),
        }
    }

    fn one(text: &str) -> (String, String, String) {
        let mut all = problems(text);
        assert_eq!(all.len(), 1, "{all:#?}");
        all.remove(0)
    }

    #[test]
    fn the_good_manifest_loads() {
        assert_eq!(problems(GOOD), Vec::new());
        let env = MapEnvironment([("TOKEN".to_owned(), "t".to_owned())].into_iter().collect());
        let manifest = parse(GOOD, "m.yaml", &env, Path::new("/etc/scimform")).unwrap();
        let crate::manifest::model::SourceConfig::File(file) = &manifest.sources["hr"] else { panic!() };
        assert_eq!(file.path, Path::new("/etc/scimform/people.yaml"));
        assert_eq!(manifest.users.attributes.len(), 3);
        assert_eq!(manifest.target.concurrency, 4);
    }

    #[test]
    fn each_mistake_is_located() {
        let cases: &[(&str, &str, (&str, &str, &str))] = &[
            ("version: 1", "version: 2", ("1:10", "version", "unsupported manifest version `2`")),
            ("groups:", "grups:", ("15:1", "grups", "unknown key `grups`")),
            ("kind: file, path", "kind: fiel, path", ("3:15", "sources.hr.kind", "unknown source kind `fiel`")),
            ("  kind: scim\n", "  kind: scum\n", ("5:9", "target.kind", "unknown variant `scum`, expected `scim`")),
            (
                "    title: title\n",
                "    title: title\n    Title: sn\n",
                ("14:5", "users.attributes.Title", "`Title` is mapped twice (SCIM names ignore case)"),
            ),
            (
                "    title: title\n",
                "    id: objectGUID\n",
                ("13:5", "users.attributes.id", "`id` is assigned by the server and cannot be mapped"),
            ),
            (
                "    title: title\n",
                "    groups: memberOf\n",
                ("13:5", "users.attributes.groups", "`groups` is read-only on users"),
            ),
            (
                "    title: title\n",
                "    title: Team Lead\n",
                (
                    "13:12",
                    "users.attributes.title",
                    "`Team Lead` is neither a source attribute name nor a template; write a constant as `{ constant: \"Team Lead\" }`",
                ),
            ),
            (
                "    title: title\n",
                "    title: [a, b]\n",
                (
                    "13:12",
                    "users.attributes.title",
                    "a source attribute name, a template, a boolean, a number, or a mapping with `from`, `constant` or `reference`",
                ),
            ),
            (
                "    title: title\n",
                "    title: { from: title, constant: x }\n",
                (
                    "13:12",
                    "users.attributes.title",
                    "a mapping needs exactly one of `from`, `constant` and `reference`",
                ),
            ),
            (
                "  source: hr\n",
                "  source: hr\n  match: displayName\n",
                ("10:10", "users.match", "the match attribute `displayName` is not mapped"),
            ),
            (
                "  external_id: \"hr-{{ id }}\"",
                "  external_id: \"hr-{{ id \"",
                ("10:20", "users.external_id", "invalid `external_id`: `{{` is never closed by `}}`"),
            ),
            (
                "from: { id: s }",
                "from: { id: s, name: t }",
                ("16:40", "groups[0].from", "`from` needs exactly one of `id`, `name` and `dn`"),
            ),
            (
                "source: hr, from",
                "source: ad, from",
                ("16:30", "groups[0].source", "source `ad` is not declared under `sources`"),
            ),
            (
                "${env:TOKEN}",
                "${env:NOPE}",
                ("7:26", "target.auth.bearer_token", "environment variable `NOPE` is not set"),
            ),
            (
                "  base_url: https",
                "  base_url: ftp",
                ("6:13", "target.base_url", "`base_url` must be an http:// or https:// URL"),
            ),
        ];
        for (from, to, (at, path, message)) in cases {
            assert!(GOOD.contains(from), "{from}");
            let got = one(&GOOD.replacen(from, to, 1));
            assert_eq!((got.0.as_str(), got.1.as_str(), got.2.as_str()), (*at, *path, *message), "{to}");
        }
    }

    #[test]
    fn set_mistakes_are_located() {
        let skills = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingSkills";
        let with = |sets: &str| GOOD.replace("groups:\n  - {", &format!("  sets:\n{sets}groups:\n  - {{"));
        let cases = [
            (
                format!(
                    "    {skills}:\n      groups: [{{ source: hr, group: {{ id: b }}, name: Billing, proficiency: 7 }}]\n"
                ),
                ("17:76", format!("users.sets.\"{skills}\".groups[0].proficiency"), "proficiency `7` is out of range"),
            ),
            (
                format!("    {skills}:\n      groups: [{{ source: hr, group: {{ id: b }}, name: Billing }}]\n"),
                ("17:16", format!("users.sets.\"{skills}\".groups[0]"), "missing `proficiency`"),
            ),
            (
                "    nickName:\n      from: nick\n".to_owned(),
                ("16:5", "users.sets.nickName".to_owned(), "`nickName` cannot be managed as a set"),
            ),
            (
                "    roles: { }\n".to_owned(),
                ("16:12", "users.sets.roles".to_owned(), "a set needs `from`, `groups` or both"),
            ),
            (
                "    roles: { from: r, groups: [{ source: hr, group: { id: x }, name: Admin, proficiency: 1 }] }\n"
                    .to_owned(),
                ("16:90", "users.sets.roles.groups[0].proficiency".to_owned(), "`roles` entries have no proficiency"),
            ),
            (
                "    roles: { from: r, groups: [{ source: ad, group: { id: x }, name: Admin }] }\n".to_owned(),
                (
                    "16:42",
                    "users.sets.roles.groups[0].source".to_owned(),
                    "source `ad` is not declared under `sources`",
                ),
            ),
        ];
        for (sets, (at, path, message)) in cases {
            let got = one(&with(&sets));
            assert_eq!((got.0.as_str(), got.1.as_str(), got.2.as_str()), (at, path.as_str(), message), "{sets}");
        }
        assert_eq!(
            problems(&with(&format!("    {skills}:\n      from: skills\n    roles:\n      from: roles\n"))),
            Vec::new()
        );
    }

    #[test]
    fn reports_every_problem_not_just_the_first() {
        let text = GOOD
            .replace("title: title", "titel: title\n    displayName: '{{ x | nope }}'")
            .replace("version: 1", "version: 1\nextra: true")
            .replace("kind: file, path: people.yaml", "kind: file");
        let all = problems(&text);
        let messages: Vec<&str> = all.iter().map(|p| p.2.as_str()).collect();
        assert_eq!(messages.len(), 4, "{all:#?}");
        assert!(messages.contains(&"unknown key `extra`"));
        assert!(messages.contains(&"missing field `path`"));
        assert!(messages.contains(&"unknown SCIM attribute `titel`"));
        assert!(messages.iter().any(|m| m.starts_with("unknown filter `nope`")));
    }

    #[test]
    fn genesys_derives_its_urls_from_the_region() {
        let text = GOOD.replace(
            "  base_url: https://scim.example/v2\n  auth: { bearer_token: \"${env:TOKEN}\" }",
            "  profile: genesys\n  region: mypurecloud.ie\n  auth:\n    oauth2_client_credentials: { client_id: c, client_secret: \"${env:TOKEN}\" }",
        );
        let env = MapEnvironment([("TOKEN".to_owned(), "t".to_owned())].into_iter().collect());
        let manifest = parse(&text, "m.yaml", &env, Path::new(".")).unwrap();
        assert_eq!(manifest.target.base_url, "https://api.mypurecloud.ie/api/v2/scim/v2");
        let crate::manifest::model::TargetAuth::OAuth2ClientCredentials { token_url, .. } = &manifest.target.auth
        else {
            panic!("oauth2 expected")
        };
        assert_eq!(token_url, "https://login.mypurecloud.ie/oauth/token");

        let generic = GOOD.replace("  base_url: https://scim.example/v2\n", "");
        assert_eq!(one(&generic).2, "missing key `base_url`");
        let region_without_genesys = GOOD.replace(
            "  base_url: https://scim.example/v2\n",
            "  base_url: https://scim.example/v2\n  region: mypurecloud.ie\n",
        );
        assert_eq!(one(&region_without_genesys).2, "`region` applies to `profile: genesys` only");
    }

    /// Names read from a Graph source are Graph's, checked at load: a typo in a user mapping, in
    /// a dotted property and in a member key each fails at its place with a suggestion; the
    /// users' AD match mapping used to key Entra members (no `member_key`) is named too.
    #[test]
    fn graph_reads_are_checked_against_graph_user_properties() {
        const ENTRA: &str = "  entra: { kind: graph, tenant_id: t, client_id: c, client_secret: s }\n";
        let entra_users = GOOD
            .replace("sources:\n", &format!("sources:\n{ENTRA}"))
            .replace("source: hr\n", "source: entra\n")
            .replace("title: title", "title: jobTitel\n    displayName: employeeOrgData.divison")
            .replace("source: hr, from", "source: entra, member_key: \"{{ userPrincipleName }}\", from");
        let all = problems(&entra_users);
        let messages: Vec<&str> = all.iter().map(|p| p.2.as_str()).collect();
        assert!(messages.contains(&"`jobTitel` is not a property of a Microsoft Graph user (v1.0)"), "{all:#?}");
        assert!(messages.contains(&"`employeeOrgData` has no property `divison`"), "{all:#?}");
        assert!(
            messages.contains(&"`userPrincipleName` is not a property of a Microsoft Graph user (v1.0)"),
            "{all:#?}"
        );
        let member_key = all.iter().find(|p| p.2.contains("userPrincipleName")).unwrap();
        assert_eq!(member_key.1, "groups[0].member_key");
        let env = MapEnvironment([("TOKEN".to_owned(), "t".to_owned())].into_iter().collect());
        let error = parse(&entra_users, "m.yaml", &env, Path::new(".")).unwrap_err();
        let hints: Vec<&str> = error.diagnostics.iter().filter_map(|d| d.hint.as_deref()).collect();
        assert!(hints.contains(&"did you mean `jobTitle`?"), "{hints:?}");
        assert!(hints.contains(&"did you mean `employeeOrgData.division`?"), "{hints:?}");
        assert!(hints.contains(&"did you mean `userPrincipalName`?"), "{hints:?}");

        let ad_users_entra_groups = GOOD
            .replace("sources:\n", &format!("sources:\n{ENTRA}"))
            .replace("{{ mail | lower }}", "{{ sAMAccountName | lower }}")
            .replace("source: hr, from", "source: entra, from");
        let (_, at, message) = one(&ad_users_entra_groups);
        assert_eq!(at, "groups[0]");
        assert!(
            message.starts_with("members of Graph source `entra` are keyed by the users' match mapping"),
            "{message}"
        );

        let fine = ad_users_entra_groups.replace(
            "source: entra, from",
            "source: entra, member_key: \"{{ onPremisesExtensionAttributes.extensionAttribute3 }}\", from",
        );
        assert_eq!(problems(&fine), Vec::new());
    }

    /// Filters come from the environment too; an interpolated value that is the wrong type is
    /// an error that never shows the value (it may be a secret).
    #[test]
    fn filters_interpolate_and_type_errors_hide_the_value() {
        let text = GOOD.replace(
            "  hr: { kind: file, path: people.yaml }\n",
            "  hr: { kind: file, path: people.yaml }\n  ad: { kind: ldap, url: ldap://dc, bind_dn: b, password: p, base_dn: dc=x, filter: \"${env:FILTER}\", page_size: \"${env:TOKEN}\" }\n  entra: { kind: graph, tenant_id: t, client_id: c, client_secret: s, filter: \"department eq '${env:DEPT}'\" }\n",
        );
        let env = MapEnvironment(
            [("TOKEN", "hunter2"), ("FILTER", "(department=Support)"), ("DEPT", "Sales")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        );
        let error = parse(&text, "m.yaml", &env, Path::new(".")).unwrap_err();
        assert_eq!(error.diagnostics.len(), 1, "{error:#?}");
        let message = &error.diagnostics[0].message;
        assert_eq!(message, "the value `${…}` gives here is not valid: expected u32");
        let fixed = text.replace("page_size: \"${env:TOKEN}\"", "page_size: 100");
        let manifest = parse(&fixed, "m.yaml", &env, Path::new(".")).unwrap();
        let crate::manifest::model::SourceConfig::Ldap(ad) = &manifest.sources["ad"] else { panic!() };
        assert_eq!(ad.filter.as_deref(), Some("(department=Support)"));
        let crate::manifest::model::SourceConfig::Graph(entra) = &manifest.sources["entra"] else { panic!() };
        assert_eq!(entra.filter.as_deref(), Some("department eq 'Sales'"));
    }

    /// A shape error in one key (an unknown key, a wrong type) does not hide the semantic
    /// errors of the rest of its section or of the others; a zero timeout is an error.
    #[test]
    fn shape_errors_do_not_hide_the_other_problems() {
        let text = r#"version: 1
sources:
  hr: { kind: file, path: people.yaml, extra: 1 }
  ad: { kind: ldap, url: http://x, bind_dn: b, password: p, base_dn: d, timeout_seconds: 0 }
target:
  kind: scim
  base_url: https://x
  concurrency: many
  timeout_seconds: 0
  auth: { bearer_token: t }
users:
  source: hr
  matchh: userName
  attributes:
    userName: mail
    titel: title
  sets:
    roles: { from: "{{ x | nope }}" }
groups:
  - { name: A, source: hrx, from: { id: a }, to: { id: b }, members_per_operation: 0 }
  - { name: B, source: hr, from: { id: a }, to: { }, methd: put }
"#;
        let all = problems(text);
        let at: Vec<(&str, &str)> = all.iter().map(|p| (p.1.as_str(), p.2.as_str())).collect();
        for expected in [
            ("sources.hr.extra", "unknown key `extra`"),
            ("sources.ad.url", "an LDAP url must start with `ldap://` or `ldaps://`"),
            ("sources.ad.timeout_seconds", "timeout_seconds `0` is out of range"),
            ("target.concurrency", "invalid type: string \"many\", expected u32"),
            ("target.timeout_seconds", "timeout_seconds `0` is out of range"),
            ("users.matchh", "unknown key `matchh`"),
            ("users.attributes.titel", "unknown SCIM attribute `titel`"),
            ("groups[0].source", "source `hrx` is not declared under `sources`"),
            ("groups[0].members_per_operation", "members_per_operation must be at least 1"),
            ("groups[1].to", "`to` needs exactly one of `id` and `display_name`"),
            ("groups[1].methd", "unknown key `methd`"),
        ] {
            assert!(at.contains(&expected), "{expected:?} missing from {at:#?}");
        }
        assert!(
            at.iter().any(|(p, m)| *p == "users.sets.roles.from" && m.starts_with("unknown filter `nope`")),
            "{at:#?}"
        );
        assert_eq!(all.len(), 12, "{at:#?}");
    }

    #[test]
    fn yaml_syntax_errors_are_located() {
        let all = problems("version: 1\nsources: [\n");
        assert_eq!(all.len(), 1);
        assert!(all[0].2.starts_with("YAML syntax error"), "{all:?}");
    }
}
