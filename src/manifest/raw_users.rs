//! The raw shape of `users.match`, `users.scope` and `users.limits`, as serde reads them and
//! schemars describes them (beside `raw.rs`, which holds the rest of the manifest).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::raw::RawGroupSelector;

/// Limits on what one plan may change.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Limits")]
pub struct RawLimits {
    /// By SCIM path: how many users one plan may change the attribute of (`userName`: a change
    /// rewrites a Genesys login). Blocked as `attribute_changes.<path>`.
    #[serde(default)]
    pub attribute_changes: BTreeMap<String, RawLimit>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Limit")]
pub struct RawLimit {
    /// At most this many.
    #[serde(default)]
    pub max: Option<u32>,
    /// At most this percentage of the users scimform owns in the target.
    #[serde(default)]
    pub max_percent: Option<f64>,
}

/// The SCIM attribute that identifies a user, or several tried in order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged, expecting = "a SCIM path, or a list of SCIM paths tried in order")]
#[schemars(rename = "Match")]
pub enum RawMatch {
    One(String),
    /// Each desired user is matched by the first that finds exactly one target user.
    InOrder(Vec<String>),
}

/// Which source users are provisioned (Entra's assignment and scoping filters).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Scope")]
pub struct RawScope {
    /// In scope when a member of any of these groups (`nested: true`: a member of a member
    /// group too). A Graph or AD users' source reads only these groups' members.
    #[serde(default)]
    pub member_of: Vec<RawScopeGroup>,
    /// In scope when any filter holds; a filter is a list of clauses that must all hold.
    #[serde(default)]
    pub filters: Vec<Vec<RawScopeClause>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ScopeGroup")]
pub struct RawScopeGroup {
    /// The source the group comes from.
    pub source: String,
    /// The source group.
    pub group: RawGroupSelector,
    /// Members of member groups count too (default false).
    #[serde(default)]
    pub nested: bool,
}

/// One test of a source attribute, compared without case as Entra does.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ScopeClause")]
pub struct RawScopeClause {
    /// The source attribute tested.
    pub attribute: String,
    pub operator: ScopeOperator,
    /// The value compared with (all operators but `in`, `not_in`, `is_empty`, `is_not_empty`).
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// The values compared with (`in`, `not_in`).
    #[serde(default)]
    pub values: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeOperator {
    Equals,
    NotEquals,
    In,
    NotIn,
    StartsWith,
    EndsWith,
    Contains,
    /// A regular expression, matched anywhere in the value unless anchored.
    Matches,
    IsEmpty,
    IsNotEmpty,
    /// Numbers, or RFC 3339 times.
    GreaterThan,
    /// Numbers, or RFC 3339 times.
    LessThan,
}
