//! The manifest as written: serde + schemars types mirroring the YAML, and the source of
//! `schema/manifest.schema.json`. Nothing here is checked beyond shape; `validate` turns these
//! into the checked `model`. String fields that may hold secrets or `${env:...}` references stay
//! raw strings here, so serde's own errors can never echo an interpolated value.

use std::collections::BTreeMap;

use schemars::JsonSchema;

pub use super::raw_users::{RawLimit, RawLimits, RawMatch, RawScope, RawScopeClause, RawScopeGroup, ScopeOperator};
use serde::Deserialize;

/// A scimform manifest: where people come from, how they map onto SCIM, and where they go.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "scimform manifest")]
pub struct RawManifest {
    /// Manifest format version. Only `1` exists.
    pub version: u32,
    /// What a PostgreSQL state keys this manifest's state and lock by (default: the manifest's
    /// path relative to its git repository's root), so every runner's checkout shares one.
    #[serde(default)]
    pub name: Option<String>,
    /// Named sources of people and groups.
    pub sources: BTreeMap<String, RawSource>,
    /// The SCIM service to provision.
    pub target: RawTarget,
    /// How source records become SCIM users.
    pub users: RawUsers,
    /// Pairings of source groups with target groups.
    #[serde(default)]
    pub groups: Vec<RawGroupPairing>,
}

/// One source, selected by `kind`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[schemars(rename = "Source")]
pub enum RawSource {
    /// Active Directory or any LDAPv3 directory.
    Ldap(RawLdapSource),
    /// Microsoft Entra ID through Microsoft Graph.
    Graph(RawGraphSource),
    /// A YAML, JSON or CSV file of people (and, for YAML/JSON, groups).
    File(RawFileSource),
}

/// Names of the source kinds, for messages.
pub const SOURCE_KINDS: &[&str] = &["ldap", "graph", "file"];

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LdapSource")]
pub struct RawLdapSource {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Bind DN or UPN (`svc@corp.example`).
    pub bind_dn: String,
    /// Bind password; use `${env:NAME}` or `${file:PATH}`.
    pub password: String,
    /// Where the user search starts.
    pub base_dn: String,
    /// LDAP filter for users (RFC 4515).
    #[serde(default)]
    pub filter: Option<String>,
    /// Search scope.
    #[serde(default)]
    pub scope: Option<LdapScope>,
    /// Page size for the Simple Paged Results control (at most 1000, AD's MaxPageSize).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Upgrade `ldap://` with StartTLS.
    #[serde(default)]
    pub starttls: Option<bool>,
    /// PEM file of extra CA certificates.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Allow a simple bind over unencrypted `ldap://` to a non-loopback host.
    #[serde(default)]
    pub allow_insecure: Option<bool>,
    /// Connect and operation timeout in seconds.
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LdapScope {
    Base,
    One,
    Sub,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GraphSource")]
pub struct RawGraphSource {
    pub tenant_id: String,
    pub client_id: String,
    /// Client secret; use `${env:NAME}` or `${file:PATH}`. Give exactly one of `client_secret`,
    /// `client_certificate` and `federated_token_file`.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// A certificate registered on the app: each token request carries a client assertion (a
    /// JWT signed with the private key, `x5t#S256` naming the certificate), never a secret.
    #[serde(default)]
    pub client_certificate: Option<RawClientCertificate>,
    /// Workload identity federation: a file holding a token another issuer hands out (a
    /// Kubernetes service-account token, a GitHub Actions OIDC token), trusted by a federated
    /// credential on the app and sent as the client assertion. Read again for every token, as
    /// the scheduler rotates it.
    #[serde(default)]
    pub federated_token_file: Option<String>,
    /// OAuth2 token endpoint (default: Microsoft's global authority for `tenant_id`).
    #[serde(default)]
    pub authority: Option<String>,
    /// Graph base URL (default `https://graph.microsoft.com/v1.0`).
    #[serde(default)]
    pub graph_url: Option<String>,
    /// OData `$filter` for users.
    #[serde(default)]
    pub filter: Option<String>,
    /// PEM file of extra CA certificates.
    #[serde(default)]
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ClientCertificate")]
pub struct RawClientCertificate {
    /// PEM file of the certificate uploaded to the app registration, relative to the manifest.
    pub cert_file: String,
    /// PEM file of its RSA private key (PKCS#8 or PKCS#1, not encrypted), relative to the
    /// manifest; keep it readable by scimform's user only.
    pub key_file: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FileSource")]
pub struct RawFileSource {
    /// Path to a `.yaml`, `.yml`, `.json` or `.csv` file, relative to the manifest.
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Scim,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Any RFC 7644 server.
    #[default]
    Generic,
    /// Genesys Cloud's SCIM API and its quirks.
    Genesys,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Target")]
pub struct RawTarget {
    pub kind: TargetKind,
    #[serde(default)]
    pub profile: Profile,
    /// The SCIM base URL (the resource endpoints are `{base_url}/Users` and `{base_url}/Groups`).
    /// With `profile: genesys` and `region`, it defaults to `https://api.{region}/api/v2/scim/v2`.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Genesys Cloud region domain, e.g. `mypurecloud.ie` or `usw2.pure.cloud` (`profile: genesys`).
    #[serde(default)]
    pub region: Option<String>,
    pub auth: RawAuth,
    /// Per-request timeout in seconds (default 30).
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
    /// Attempts per request, retries included, for 429, 502-504, timeouts and resets (default 5).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// The largest response read, in MiB (default 32); a larger one is an error, not read whole.
    #[serde(default)]
    pub max_response_mib: Option<u32>,
    /// The most resources one listing may hold (default 1,000,000): a service that reports or
    /// keeps sending more is stopped instead of filling memory.
    #[serde(default)]
    pub max_resources: Option<u32>,
    /// Requests in flight at once: an apply's writes and a listing's pages (default 4). A service
    /// that serves one request at a time does best at 1.
    #[serde(default)]
    pub concurrency: Option<u32>,
    #[serde(default)]
    pub rate_limit: Option<RawRateLimit>,
    /// PEM file of extra CA certificates.
    #[serde(default)]
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(rename = "Auth")]
pub enum RawAuth {
    /// A static bearer token; use `${env:NAME}`.
    BearerToken(String),
    /// OAuth2 client credentials.
    Oauth2ClientCredentials(RawOAuth2),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "OAuth2")]
pub struct RawOAuth2 {
    /// The token endpoint. With `profile: genesys` and `region`, it defaults to
    /// `https://login.{region}/oauth/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    #[serde(default)]
    pub scope: Option<String>,
    /// How the client authenticates to the token endpoint (default `basic`).
    #[serde(default)]
    pub client_auth: ClientAuth,
}

/// Client authentication at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Form,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RateLimit")]
pub struct RawRateLimit {
    pub requests_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Users")]
pub struct RawUsers {
    /// The source that users come from.
    pub source: String,
    /// The SCIM attribute that identifies a user in the target (default `userName`).
    #[serde(rename = "match", default)]
    pub match_attribute: Option<RawMatch>,
    /// Ownership marker written to `externalId`: an attribute name or a template. scimform only
    /// deprovisions users whose `externalId` this template could have produced.
    #[serde(default)]
    pub external_id: Option<String>,
    /// SCIM path -> mapping.
    pub attributes: BTreeMap<String, RawMapping>,
    /// Create users whose source account is disabled (default false).
    #[serde(default)]
    pub create_disabled: bool,
    #[serde(default)]
    pub deprovision: Option<RawDeprovision>,
    /// Multi-valued attributes managed as sets of named entries: Genesys's `routingSkills` and
    /// `routingLanguages` (`{name, proficiency}`) and `roles` (`{value}`), by SCIM path.
    #[serde(default)]
    pub sets: BTreeMap<String, RawSet>,
    /// Which source users are provisioned (default: every user the source reads). A user is
    /// in scope when it is a member of any `member_of` group (when there are any) and any of
    /// the `filters` holds (when there are any). One that leaves the scope is deprovisioned by
    /// `deprovision.out_of_scope`.
    #[serde(default)]
    pub scope: Option<RawScope>,
    /// Safety rails beside the deprovisioning ones: a plan over any is blocked until `apply
    /// --allow NAME=N`.
    #[serde(default)]
    pub limits: Option<RawLimits>,
}

/// Where a set's entries come from: a source attribute listing them, members of source groups,
/// or both.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Set")]
pub struct RawSet {
    /// An attribute name or template whose value lists entries, as a list or as text split by
    /// `separator`: `Billing:3;Sales:2` (name, then proficiency after `:`).
    #[serde(default)]
    pub from: Option<String>,
    /// Separates entries in a text value (default `;`).
    #[serde(default)]
    pub separator: Option<String>,
    /// The proficiency of an entry the attribute lists without one (default: such an entry is
    /// an error).
    #[serde(default)]
    pub default_proficiency: Option<f64>,
    /// Members of each source group get an entry.
    #[serde(default)]
    pub groups: Vec<RawSetGroup>,
    /// When the attribute and a group give the same entry, whose proficiency counts (default
    /// `attribute`: a person's own data is more specific than a group's).
    #[serde(default)]
    pub precedence: Option<SetPrecedence>,
    /// `minimal` sends only the entries that change; `replace` sends the whole set in one
    /// operation (default: `replace` for the genesys profile, else `minimal`).
    #[serde(default)]
    pub write: Option<SetWrite>,
    /// `always` (default) or `on_create`: the set is sent when the user is created and never
    /// compared or written afterwards.
    #[serde(default)]
    pub apply: Option<ApplyWhen>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SetGroup")]
pub struct RawSetGroup {
    /// The source the group comes from.
    pub source: String,
    /// The source group.
    pub group: RawGroupSelector,
    /// Expand nested groups (default false).
    #[serde(default)]
    pub nested: bool,
    /// The entry its members get (a skill, a language, a role).
    pub name: String,
    /// The entry's proficiency (skills and languages, 0 to 5).
    #[serde(default)]
    pub proficiency: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SetPrecedence {
    #[default]
    Attribute,
    Groups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SetWrite {
    Minimal,
    Replace,
}

/// A source attribute name, a template (`"{{ mail | lower }}"`), a constant, or the long form.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a source attribute name, a template, a boolean, a number, or a mapping with `from`, `constant` or `reference`"
)]
#[schemars(rename = "Mapping")]
pub enum RawMapping {
    Short(String),
    Bool(bool),
    Number(serde_json::Number),
    Full(RawMappingSpec),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MappingSpec")]
pub struct RawMappingSpec {
    /// A source attribute name or a template.
    #[serde(default)]
    pub from: Option<String>,
    /// A fixed value.
    #[serde(default)]
    pub constant: Option<serde_json::Value>,
    /// A source attribute naming another user of the users' source (AD's `manager` DN, Graph's
    /// `manager`, a file's id): the value becomes that user's target id, e.g. for
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
    #[serde(default)]
    pub reference: Option<String>,
    /// What an empty source value does to the target attribute.
    #[serde(default)]
    pub on_empty: Option<OnEmpty>,
    /// When the attribute is written: `always` (default: compared and corrected every run) or
    /// `on_create` (sent when the user is created, never compared or written afterwards, so an
    /// edit made in the target stays).
    #[serde(default)]
    pub apply: Option<ApplyWhen>,
}

/// When a mapped attribute is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplyWhen {
    /// Compared and corrected on every run.
    #[default]
    Always,
    /// Sent when the user is created; never compared or written afterwards.
    OnCreate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnEmpty {
    /// Leave the target value as it is.
    #[default]
    Keep,
    /// Remove the target value.
    Remove,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Deprovision")]
pub struct RawDeprovision {
    /// What happens to an owned user that is in no source (default `disable`).
    #[serde(default)]
    pub action: DeprovisionAction,
    /// Refuse a plan that would deprovision more users than this.
    #[serde(default)]
    pub max: Option<u32>,
    /// Refuse a plan that would deprovision more than this percentage of owned users.
    #[serde(default)]
    pub max_percent: Option<f64>,
    /// What happens to an owned user whose source record left `users.scope` (default
    /// `disable`).
    #[serde(default)]
    pub out_of_scope: Option<DeprovisionAction>,
    /// Delete a user scimform disabled (for leaving every source or the scope) once it has been
    /// gone this many days; needs a state, which remembers when each was disabled.
    #[serde(default)]
    pub delete_after_days: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeprovisionAction {
    /// Set `active` to false (keeps roles; the default).
    #[default]
    Disable,
    /// DELETE the user.
    Delete,
    /// Leave the user alone.
    Ignore,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GroupPairing")]
pub struct RawGroupPairing {
    /// The pairing's name, shown in plans.
    pub name: String,
    /// The source the group comes from.
    pub source: String,
    /// The source group.
    pub from: RawGroupSelector,
    /// The target group.
    pub to: RawTargetGroup,
    /// `patch` sends member additions and removals; `put` replaces the member list.
    #[serde(default)]
    pub method: MembershipMethod,
    /// Expand nested groups: members of member groups are members too (default false).
    #[serde(default)]
    pub nested: bool,
    /// How a source member is keyed to find its user: an attribute name or a template over the
    /// member's attributes, compared with the users' `match` value. Defaults to the mapping of the
    /// `match` attribute, which joins members read from the users' own source.
    #[serde(default)]
    pub member_key: Option<String>,
    /// Members per PATCH operation when adding (`method: patch`; default 100).
    #[serde(default)]
    pub members_per_operation: Option<u32>,
    /// Member changes per request (`method: patch`; default: all in one). A service that
    /// answers a membership write 413 ("over the size limit") gets it again in smaller requests
    /// either way.
    #[serde(default)]
    pub members_per_request: Option<u32>,
    /// Create the target group (named by `to.display_name`) when it does not exist. Off by
    /// default: target groups are paired, never created or deleted.
    #[serde(default)]
    pub create: bool,
    /// At most this many members removed by one plan (blocked as `removals.<name>`).
    #[serde(default)]
    pub max_removals: Option<u32>,
    /// At most this percentage of the group's members removed by one plan.
    #[serde(default)]
    pub max_removals_percent: Option<f64>,
}

/// Exactly one of `id`, `name`, `dn`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GroupSelector")]
pub struct RawGroupSelector {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub dn: Option<String>,
    /// A pairing's `from` only: every source group whose name matches this regular expression
    /// is a pairing of its own; `{{ match.1 }}` in the pairing's `name` and `to.display_name`
    /// is the first capture group.
    #[serde(default)]
    pub name_matches: Option<String>,
}

/// Exactly one of `id`, `display_name`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TargetGroup")]
pub struct RawTargetGroup {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MembershipMethod {
    #[default]
    Patch,
    Put,
}

/// The JSON Schema of the manifest, as `scimform schema` prints it.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(RawManifest);
    // A name, not a place: editors find the file through the manifest's `$schema` line.
    schema.insert("$id".to_owned(), serde_json::Value::String("urn:scimform:schema:manifest:1".to_owned()));
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
