//! What Genesys Cloud's SCIM API refuses, for the embedded server's Genesys mode
//! (`MemoryStore::genesys`): a test double may be stricter than the service it stands for,
//! never more lenient. Taken from Genesys's SCIM API documentation (the SDKs' parameter texts)
//! and help-centre pages:
//! - Users listed without a filter are the active ones; inactive ones need `active eq false`.
//! - `count` over 25 "may exceed internal resource limits and return a 429" unless
//!   `excludedAttributes` drops the secondary lookups (`externalId`, `roles`, `routingSkills`,
//!   `routingLanguages`): refused here whenever any of them stays in.
//! - `excludedAttributes` takes the attributes Genesys lists as valid values, nothing else.
//! - User filters: `id`, `userName`, `manager`, `email`, `division`, `externalId`, `active`,
//!   `employeeNumber`, each with `eq`; groups: `id`, `displayName`.
//! - `groups` on a user is read-only (membership changes through Groups); the `other` email
//!   mirrors `userName` and is read-only; empty strings are refused; at most 50 routing skills
//!   and 50 languages, proficiency 0 to 5.
//! - A stale `If-Match` is answered 400 `invalidVers`, 409 or 412 (all three are seen).
//! - A request over the size limit is answered 413.

use serde_json::Value;

use crate::scim::EqFilter;

/// Genesys's extension schema.
const GENESYS: &str = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
/// The secondary lookups a page over 25 must exclude.
const EXPENSIVE: &[&str] = &[
    "externalId",
    "roles",
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingSkills",
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingLanguages",
];
/// `excludedAttributes` values Genesys documents as valid (core names may also be written with
/// the core schema's URN).
const EXCLUDABLE: &[&str] = &[
    "id",
    "userName",
    "displayName",
    "title",
    "active",
    "externalId",
    "phoneNumbers",
    "emails",
    "groups",
    "roles",
    "meta",
    "meta.version",
    "meta.lastModified",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User",
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingSkills",
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingLanguages",
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:externalIds",
];
const USER_FILTERS: &[&str] =
    &["id", "userName", "manager", "email", "division", "externalId", "active", "employeeNumber"];
const GROUP_FILTERS: &[&str] = &["id", "displayName"];

/// How the Genesys double answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenesysRules {
    /// The status of a stale `If-Match`: 400 (`invalidVers`), 409 or 412.
    pub stale_status: u16,
    /// Member values one group write may carry before it is answered 413.
    pub max_members_per_request: Option<usize>,
}

impl Default for GenesysRules {
    fn default() -> Self {
        Self { stale_status: 400, max_members_per_request: None }
    }
}

/// A refusal: status, `scimType`, detail.
pub type Refusal = (u16, Option<&'static str>, String);

/// Why Genesys would refuse a listing with these query parameters.
pub fn refuse_list(users: bool, count: Option<usize>, excluded: Option<&str>, filter: Option<&str>) -> Option<Refusal> {
    let excluded: Vec<&str> = excluded.map(|e| e.split(',').map(str::trim).collect()).unwrap_or_default();
    if let Some(unknown) = excluded.iter().find(|e| !excludable(e)) {
        return Some((400, Some("invalidValue"), format!("`{unknown}` is not a valid value for excludedAttributes")));
    }
    if users && count.is_some_and(|c| c > 25) {
        let kept: Vec<&&str> =
            EXPENSIVE.iter().filter(|x| !excluded.iter().any(|e| e.eq_ignore_ascii_case(x))).collect();
        if !kept.is_empty() {
            return Some((429, None, format!("a page over 25 with {kept:?} exceeds internal resource limits")));
        }
    }
    if let Some(text) = filter {
        let allowed = if users { USER_FILTERS } else { GROUP_FILTERS };
        let known = EqFilter::parse(text).is_some_and(|f| allowed.iter().any(|a| a.eq_ignore_ascii_case(&f.attribute)));
        if !known {
            return Some((400, Some("invalidFilter"), format!("unsupported filter `{text}`")));
        }
    }
    None
}

fn excludable(name: &str) -> bool {
    let core = name.strip_prefix("urn:ietf:params:scim:schemas:core:2.0:User:").unwrap_or(name);
    EXCLUDABLE.iter().any(|e| e.eq_ignore_ascii_case(core))
}

/// Why Genesys would refuse a user as a write would leave it.
pub fn refuse_user(user: &Value, before: Option<&Value>) -> Option<Refusal> {
    let object = user.as_object()?;
    if user.get("groups").is_some() && before.and_then(|b| b.get("groups")) != user.get("groups") {
        return Some((400, Some("mutability"), "`groups` is read-only; change membership through Groups".into()));
    }
    if let Some(empty) = empty_string(user, "") {
        return Some((400, Some("invalidValue"), format!("`{empty}` is an empty string")));
    }
    let user_name = object.get("userName").and_then(Value::as_str).unwrap_or_default();
    let other_email = object
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("other")));
    if let Some(other) = other_email
        && other.get("value").and_then(Value::as_str).is_some_and(|v| !v.eq_ignore_ascii_case(user_name))
    {
        return Some((400, Some("mutability"), "the `other` email mirrors userName and is read-only".into()));
    }
    for set in ["routingSkills", "routingLanguages"] {
        let entries = user.get(GENESYS).and_then(|g| g.get(set)).and_then(Value::as_array);
        let Some(entries) = entries else { continue };
        if entries.len() > 50 {
            return Some((400, Some("invalidValue"), format!("{set}: {} entries, at most 50", entries.len())));
        }
        if entries
            .iter()
            .any(|e| e.get("proficiency").and_then(Value::as_f64).is_some_and(|p| !(0.0..=5.0).contains(&p)))
        {
            return Some((400, Some("invalidValue"), format!("{set}: proficiency must be 0 to 5")));
        }
    }
    None
}

/// The first empty string in a resource, by path.
fn empty_string(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::String(s) if s.is_empty() => Some(at.to_owned()),
        Value::Array(items) => items.iter().find_map(|i| empty_string(i, at)),
        Value::Object(object) => object.iter().find_map(|(k, v)| {
            let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            empty_string(v, &here)
        }),
        _ => None,
    }
}

/// Why Genesys would refuse a group write as too large: the member values it carries.
pub fn refuse_group_write(body: &Value, rules: &GenesysRules) -> Option<Refusal> {
    let limit = rules.max_members_per_request?;
    let members: usize = match body.get("Operations").and_then(Value::as_array) {
        Some(operations) => operations
            .iter()
            .map(|op| match op.get("value") {
                Some(Value::Array(values)) => values.len(),
                _ => 1,
            })
            .sum(),
        None => body.get("members").and_then(Value::as_array).map_or(0, Vec::len),
    };
    (members > limit).then(|| (413, None, "request is over the size limit".to_owned()))
}

/// The answer to a stale `If-Match`, in the form the double was set to.
pub fn stale(rules: &GenesysRules, have: &str, wanted: &str) -> Refusal {
    match rules.stale_status {
        409 => (409, None, "Version does not match current version".to_owned()),
        412 => (412, None, format!("version is {have}, not {wanted}")),
        _ => (400, Some("invalidVers"), format!("version is {have}, not {wanted}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn listings_follow_the_documented_limits() {
        assert!(refuse_list(true, Some(25), None, None).is_none());
        assert_eq!(refuse_list(true, Some(100), Some("roles"), None).map(|r| r.0), Some(429));
        assert!(refuse_list(true, Some(100), Some(&EXPENSIVE.join(",")), None).is_none());
        assert_eq!(refuse_list(true, Some(25), Some("nickName"), None).map(|r| r.0), Some(400));
        assert!(refuse_list(true, None, None, Some(r#"userName eq "a@x""#)).is_none());
        assert_eq!(refuse_list(true, None, None, Some(r#"title eq "x""#)).map(|r| r.1), Some(Some("invalidFilter")));
        assert!(refuse_list(false, None, None, Some(r#"displayName eq "Team""#)).is_none());
    }

    #[test]
    fn user_writes_follow_the_documented_shapes() {
        let user = json!({"userName": "a@x", "emails": [{"type": "other", "value": "a@x"}]});
        assert!(refuse_user(&user, None).is_none());
        assert!(refuse_user(&json!({"userName": "a@x", "title": ""}), None).is_some());
        assert!(refuse_user(&json!({"userName": "a@x", "groups": []}), None).is_some());
        let other = json!({"userName": "a@x", "emails": [{"type": "other", "value": "b@x"}]});
        assert!(refuse_user(&other, None).is_some());
        let skills = json!({"userName": "a@x", GENESYS: {"routingSkills": [{"name": "A", "proficiency": 7}]}});
        assert!(refuse_user(&skills, None).is_some());
    }
}
