//! The checked manifest: references resolved, paths and templates parsed, secrets interpolated.
//! Everything downstream of `manifest` works with these types only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use super::raw::{
    ApplyWhen, ClientAuth, DeprovisionAction, LdapScope, MembershipMethod, OnEmpty, Profile, SetPrecedence, SetWrite,
};
use crate::mapping::Mapping;
use crate::scim::ScimPath;
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct Manifest {
    /// What a PostgreSQL state keys the manifest's state by, if given.
    pub name: Option<String>,
    pub sources: BTreeMap<String, SourceConfig>,
    pub target: TargetConfig,
    pub users: UserMapping,
    pub groups: Vec<GroupPairing>,
    /// Pairings that stand for every source group whose name matches (`from.name_matches`).
    pub group_patterns: Vec<GroupPattern>,
    /// The sha256 of the manifest's text: a saved plan is only applied with the manifest it was
    /// made from.
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub enum SourceConfig {
    File(FileConfig),
    Ldap(LdapConfig),
    Graph(GraphConfig),
}

#[derive(Debug, Clone)]
pub struct FileConfig {
    /// Resolved against the manifest's directory.
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct LdapConfig {
    pub url: String,
    pub bind_dn: String,
    pub password: Secret,
    pub base_dn: String,
    pub filter: Option<String>,
    pub scope: LdapScope,
    pub page_size: u32,
    pub starttls: bool,
    pub ca_file: Option<PathBuf>,
    pub allow_insecure: bool,
    pub timeout_seconds: u32,
}

#[derive(Debug, Clone)]
pub struct GraphConfig {
    pub tenant_id: String,
    pub client_id: String,
    pub credential: GraphCredential,
    pub authority: Option<String>,
    pub graph_url: Option<String>,
    pub filter: Option<String>,
    pub ca_file: Option<PathBuf>,
}

/// How the Graph source proves who it is to the token endpoint.
#[derive(Debug, Clone)]
pub enum GraphCredential {
    ClientSecret(Secret),
    /// A certificate and its private key (files); the key is read when the source opens.
    Certificate {
        cert_file: PathBuf,
        key_file: PathBuf,
    },
    /// A token file a scheduler writes and rotates (workload identity federation).
    FederatedToken {
        token_file: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub profile: Profile,
    pub base_url: String,
    pub auth: TargetAuth,
    pub concurrency: usize,
    pub requests_per_minute: Option<u32>,
    pub ca_file: Option<PathBuf>,
    pub timeout_seconds: u32,
    pub max_attempts: u32,
    pub limits: ReadLimits,
}

/// Bounds on what a run reads from the target, against a service that misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The largest response body read.
    pub max_response_bytes: usize,
    /// The most resources one listing may hold.
    pub max_resources: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self { max_response_bytes: 32 * 1024 * 1024, max_resources: 1_000_000 }
    }
}

#[derive(Debug, Clone)]
pub enum TargetAuth {
    BearerToken(Secret),
    OAuth2ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: Secret,
        scope: Option<String>,
        client_auth: ClientAuth,
    },
}

#[derive(Debug, Clone)]
pub struct UserMapping {
    pub source: String,
    /// The target attribute that identifies a user (its value is the user's key); one of
    /// `attributes`.
    pub match_path: ScimPath,
    /// Every attribute a user is matched by, tried in order: `match_path` first.
    pub match_paths: Vec<ScimPath>,
    /// The ownership marker written to `externalId`.
    pub external_id: Option<Mapping>,
    /// Managed attributes, sorted by path.
    pub attributes: Vec<AttributeMapping>,
    pub create_disabled: bool,
    pub deprovision: Deprovision,
    /// Multi-valued attributes managed as sets, sorted by path.
    pub sets: Vec<SetMapping>,
    /// Which source users are provisioned.
    pub scope: Scope,
    /// `users.limits.attribute_changes`: how many users one plan may change each attribute of.
    pub attribute_limits: BTreeMap<ScimPath, Limit>,
}

/// A safety rail: at most `max` of something, or `max_percent` of the whole.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limit {
    pub max: Option<usize>,
    pub max_percent: Option<f64>,
}

/// Which source users are provisioned: members of any `member_of` group (when there are any)
/// for whom any of the `filters` holds (when there are any).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub member_of: Vec<ScopeGroup>,
    /// Any filter holds when all its clauses do.
    pub filters: Vec<Vec<ScopeClause>>,
}

impl Scope {
    /// The source attributes the filters read.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.filters.iter().flatten().map(|c| c.attribute.as_str())
    }
}

/// A source group whose members are in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeGroup {
    pub source: String,
    pub group: GroupSelector,
    pub nested: bool,
}

/// One test of a source attribute.
#[derive(Debug, Clone)]
pub struct ScopeClause {
    pub attribute: String,
    pub test: ScopeTest,
}

/// What a clause asks of a value; text compares without case (held in lower case here).
#[derive(Debug, Clone)]
pub enum ScopeTest {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    Matches(regex::Regex),
    IsEmpty,
    IsNotEmpty,
    GreaterThan(Bound),
    LessThan(Bound),
}

/// What `greater_than` and `less_than` compare with: a number or a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Number(f64),
    Time(jiff::Timestamp),
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Number(n) => write!(f, "{n}"),
            Bound::Time(t) => write!(f, "{t}"),
        }
    }
}

impl fmt::Display for ScopeClause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.attribute;
        let list = |values: &[String]| values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ");
        match &self.test {
            ScopeTest::Equals(v) => write!(f, "{a} equals {v:?}"),
            ScopeTest::NotEquals(v) => write!(f, "{a} not_equals {v:?}"),
            ScopeTest::In(v) => write!(f, "{a} in [{}]", list(v)),
            ScopeTest::NotIn(v) => write!(f, "{a} not_in [{}]", list(v)),
            ScopeTest::StartsWith(v) => write!(f, "{a} starts_with {v:?}"),
            ScopeTest::EndsWith(v) => write!(f, "{a} ends_with {v:?}"),
            ScopeTest::Contains(v) => write!(f, "{a} contains {v:?}"),
            ScopeTest::Matches(r) => write!(f, "{a} matches {:?}", r.as_str().trim_start_matches("(?i)")),
            ScopeTest::IsEmpty => write!(f, "{a} is_empty"),
            ScopeTest::IsNotEmpty => write!(f, "{a} is_not_empty"),
            ScopeTest::GreaterThan(b) => write!(f, "{a} greater_than {b}"),
            ScopeTest::LessThan(b) => write!(f, "{a} less_than {b}"),
        }
    }
}

pub use crate::scim::GENESYS_USER_SCHEMA;

/// What a set attribute's entries look like, and the limits the service puts on them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SetShape {
    /// The field that names an entry: `name` (skills, languages) or `value` (roles).
    pub key: &'static str,
    /// The entry's level, if it has one: `proficiency`.
    pub level: Option<&'static str>,
    /// At most this many entries.
    pub max: Option<usize>,
    /// The level's allowed range.
    pub range: (f64, f64),
}

impl SetShape {
    /// The shape of a supported set attribute, by path.
    pub fn of(path: &ScimPath) -> Option<Self> {
        let genesys = path.schema().is_some_and(|s| s.eq_ignore_ascii_case(GENESYS_USER_SCHEMA));
        let name = path.attribute_name();
        if path.filter().is_some() || path.sub_attribute().is_some() {
            return None;
        }
        if genesys && (name.eq_ignore_ascii_case("routingSkills") || name.eq_ignore_ascii_case("routingLanguages")) {
            return Some(Self { key: "name", level: Some("proficiency"), max: Some(50), range: (0.0, 5.0) });
        }
        if path.is("roles") {
            return Some(Self { key: "value", level: None, max: None, range: (0.0, 0.0) });
        }
        None
    }
}

/// One set attribute and where its entries come from.
#[derive(Debug, Clone)]
pub struct SetMapping {
    pub path: ScimPath,
    pub shape: SetShape,
    pub from: Option<Mapping>,
    pub separator: String,
    pub default_level: Option<f64>,
    pub groups: Vec<SetGroupRule>,
    pub precedence: SetPrecedence,
    pub write: SetWrite,
    pub apply: ApplyWhen,
}

/// Members of a source group get an entry.
#[derive(Debug, Clone)]
pub struct SetGroupRule {
    pub source: String,
    pub group: GroupSelector,
    pub nested: bool,
    pub name: String,
    pub level: Option<f64>,
}

impl UserMapping {
    /// Every target attribute scimform compares or writes on existing users: what it reads of
    /// the target, remembers in the state and reports drift of. Attributes written only when a
    /// user is created (`apply: on_create`) are not among them.
    pub fn managed_paths(&self) -> Vec<ScimPath> {
        let mut paths: Vec<ScimPath> =
            self.attributes.iter().filter(|a| a.apply == ApplyWhen::Always).map(|a| a.path.clone()).collect();
        paths.extend(self.sets.iter().filter(|s| s.apply == ApplyWhen::Always).map(|s| s.path.clone()));
        paths.extend(self.match_paths.iter().cloned());
        paths.push(ScimPath::active());
        if self.external_id.is_some() {
            paths.push(ScimPath::external_id());
        }
        paths.sort();
        paths.dedup();
        paths
    }

    /// Whether `path` is written only when a user is created (`apply: on_create`).
    pub fn is_create_only(&self, path: &ScimPath) -> bool {
        self.attributes.iter().any(|a| a.path == *path && a.apply == ApplyWhen::OnCreate)
            || self.sets.iter().any(|s| s.path == *path && s.apply == ApplyWhen::OnCreate)
    }

    /// The set mapping for `path`, if `path` is managed as a set.
    pub fn set(&self, path: &ScimPath) -> Option<&SetMapping> {
        self.sets.iter().find(|s| s.path == *path)
    }

    /// The mapping that produces the match value (and so, by default, a group member's key).
    pub fn match_mapping(&self) -> Option<&Mapping> {
        self.attributes.iter().find(|a| a.path == self.match_path).map(|a| &a.mapping)
    }

    /// Every source attribute the mappings read.
    pub fn source_attributes(&self) -> std::collections::BTreeSet<String> {
        self.attributes
            .iter()
            .map(|a| &a.mapping)
            .chain(&self.external_id)
            .chain(self.sets.iter().filter_map(|s| s.from.as_ref()))
            .flat_map(Mapping::attributes)
            .map(str::to_owned)
            .collect()
    }
}

impl Manifest {
    /// Whether the users' source reads only the scope groups' members itself: an AD or Graph
    /// users' source whose scope groups are all its own (AD's search carries them; Graph reads
    /// the groups' members instead of the tenant's users). The scope groups are then not read
    /// apart.
    pub fn scope_read_by_source(&self) -> bool {
        let scope = &self.users.scope.member_of;
        !scope.is_empty()
            && scope.iter().all(|g| g.source == self.users.source)
            && matches!(self.sources.get(&self.users.source), Some(SourceConfig::Ldap(_) | SourceConfig::Graph(_)))
    }

    /// Whether a mapping reads the run's clock (`now()`): the desired state then changes with
    /// time alone, so no run can take the last one's plan as standing (`state::Settled`).
    pub fn reads_clock(&self) -> bool {
        let users = &self.users;
        let patterns = self.group_patterns.iter().map(|p| &p.template);
        users
            .attributes
            .iter()
            .map(|a| &a.mapping)
            .chain(&users.external_id)
            .chain(users.sets.iter().filter_map(|s| s.from.as_ref()))
            .chain(self.groups.iter().chain(patterns).filter_map(|p| p.member_key.as_ref()))
            .any(Mapping::reads_clock)
    }

    /// Every attribute the mappings read from source `name`: the user mappings' (and `disabled`)
    /// when it serves the users; the member keys of the pairings it serves (the users' match
    /// mapping where a pairing names none), and the match mapping for set rules' groups it
    /// serves. A source asked for exactly these never selects what it does not have (a Graph
    /// source that only serves groups never selects AD's `objectGUID`).
    pub fn attributes_read_from(&self, name: &str) -> std::collections::BTreeSet<String> {
        let match_attributes = || self.users.match_mapping().map(Mapping::attributes).unwrap_or_default();
        let mut read = std::collections::BTreeSet::new();
        if self.users.source == name {
            read.extend(self.users.source_attributes());
            read.extend(self.users.scope.attributes().map(str::to_owned));
            read.insert("disabled".to_owned());
        }
        // Members of a scope group are keyed like users are matched.
        if self.users.scope.member_of.iter().any(|g| g.source == name) {
            read.extend(match_attributes().into_iter().map(str::to_owned));
        }
        let patterns = self.group_patterns.iter().map(|p| &p.template);
        for pairing in self.groups.iter().chain(patterns).filter(|p| p.source == name) {
            match &pairing.member_key {
                Some(key) => read.extend(key.attributes().into_iter().map(str::to_owned)),
                None => read.extend(match_attributes().into_iter().map(str::to_owned)),
            }
        }
        if self.users.sets.iter().flat_map(|s| &s.groups).any(|rule| rule.source == name) {
            read.extend(match_attributes().into_iter().map(str::to_owned));
        }
        read
    }
}

#[derive(Debug, Clone)]
pub struct AttributeMapping {
    pub path: ScimPath,
    pub mapping: Mapping,
    pub on_empty: OnEmpty,
    pub apply: ApplyWhen,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deprovision {
    pub action: DeprovisionAction,
    pub max: Option<usize>,
    pub max_percent: Option<f64>,
    /// What happens to an owned user whose source record left the scope.
    pub out_of_scope: DeprovisionAction,
    /// A user scimform disabled is deleted once gone this many days.
    pub delete_after_days: Option<u32>,
}

impl Default for Deprovision {
    fn default() -> Self {
        Self {
            action: DeprovisionAction::Disable,
            max: None,
            max_percent: None,
            out_of_scope: DeprovisionAction::Disable,
            delete_after_days: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GroupPairing {
    pub name: String,
    pub source: String,
    pub from: GroupSelector,
    pub to: TargetGroupRef,
    pub method: MembershipMethod,
    /// Expand nested source groups.
    pub nested: bool,
    /// How a source member is keyed; `None` uses the users' match mapping.
    pub member_key: Option<Mapping>,
    pub members_per_operation: usize,
    /// Member changes per request, if bounded.
    pub members_per_request: Option<usize>,
    /// Create the target group when it is missing.
    pub create: bool,
    /// How many members one plan may remove from the group.
    pub max_removals: Limit,
}

/// One pairing for every source group whose name matches `pattern`: each match is a pairing of
/// its own, named and targeted by filling `{{ match.N }}` in `name` and `to`.
#[derive(Debug, Clone)]
pub struct GroupPattern {
    pub name: String,
    pub source: String,
    pub pattern: regex::Regex,
    /// The target group's display name, with `{{ match.N }}` holes.
    pub to: String,
    /// Everything else a pairing says, `name`, `from` and `to` aside.
    pub template: GroupPairing,
}

impl GroupPattern {
    /// The pairing for the source group `id` named `name`, when the name matches.
    pub fn pairing(&self, id: &str, name: &str) -> Option<GroupPairing> {
        let captures = self.pattern.captures(name)?;
        Some(GroupPairing {
            name: fill_matches(&self.name, &captures),
            from: GroupSelector::Id(id.to_owned()),
            to: TargetGroupRef::DisplayName(fill_matches(&self.to, &captures)),
            ..self.template.clone()
        })
    }

    /// The literal start of the pattern (`GC-` for `^GC-(.+)$`), for a source that can ask for
    /// candidates by prefix.
    pub fn literal_prefix(&self) -> Option<String> {
        let rest = self.pattern.as_str().strip_prefix('^')?;
        let prefix: String = rest.chars().take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' ')).collect();
        // A quantifier after the last character would make it optional.
        let next = rest[prefix.len()..].chars().next();
        let prefix = if matches!(next, Some('?' | '*' | '{')) {
            prefix.chars().take(prefix.chars().count().saturating_sub(1)).collect()
        } else {
            prefix
        };
        (!prefix.is_empty()).then_some(prefix)
    }
}

/// `text` with each `{{ match.N }}` replaced by capture group N.
pub fn fill_matches(text: &str, captures: &regex::Captures<'_>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find("}}") else { break };
        let hole = rest[open + 2..open + close].trim();
        let group = hole.strip_prefix("match.").and_then(|n| n.parse::<usize>().ok());
        out.push_str(group.and_then(|n| captures.get(n)).map_or("", |m| m.as_str()));
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    out
}

/// How a source group is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupSelector {
    Id(String),
    Name(String),
    Dn(String),
}

impl GroupSelector {
    /// What names the group: its name, DN or id.
    pub fn name(&self) -> &str {
        match self {
            GroupSelector::Id(text) | GroupSelector::Name(text) | GroupSelector::Dn(text) => text,
        }
    }
}

impl fmt::Display for GroupSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupSelector::Id(id) => write!(f, "id `{id}`"),
            GroupSelector::Name(name) => write!(f, "name `{name}`"),
            GroupSelector::Dn(dn) => write!(f, "dn `{dn}`"),
        }
    }
}

/// How a target group is found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TargetGroupRef {
    Id(String),
    DisplayName(String),
}

impl fmt::Display for TargetGroupRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetGroupRef::Id(id) => write!(f, "id `{id}`"),
            TargetGroupRef::DisplayName(name) => write!(f, "displayName `{name}`"),
        }
    }
}
