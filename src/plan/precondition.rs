//! What a plan assumes about each target resource it touches, so a saved plan can tell, before
//! any write, whether the target still is what the plan was made from. Pure: the values are
//! computed from resources as read; apply fetches them again and asks `holds`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::scim::ScimPath;
use crate::scim::request::sha256_hex;

/// The state a planned change expects its resource to be in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precondition {
    /// The resource's `meta.version` as read; also sent as `If-Match`.
    Etag(String),
    /// The sha256 of the managed attributes as read, for services without ETags.
    Sha256(String),
    /// The resource does not exist yet (a create): no user with this `userName`, no group with
    /// this `displayName`.
    Absent,
}

impl Precondition {
    /// A user's precondition: its ETag when the service keeps them, else the fingerprint of the
    /// attributes scimform manages (the only ones a plan's decisions depend on).
    pub fn for_user(user: &crate::current::CurrentUser, managed: &[ScimPath]) -> Self {
        match &user.version {
            Some(version) => Self::Etag(version.clone()),
            None => Self::Sha256(fingerprint_of(managed, |path| user.get(path))),
        }
    }

    /// A group's precondition: its ETag, else the fingerprint of its name and members.
    pub fn for_group(version: Option<&str>, display_name: &str, members: &BTreeSet<String>) -> Self {
        match version {
            Some(version) => Self::Etag(version.to_owned()),
            None => Self::Sha256(group_fingerprint(display_name, members)),
        }
    }

    /// The `If-Match` value this precondition carries.
    pub fn etag(&self) -> Option<String> {
        match self {
            Self::Etag(version) => Some(version.clone()),
            Self::Sha256(_) | Self::Absent => None,
        }
    }
}

/// sha256 over each managed path and its value as read (absent and `null` alike), in path order.
pub fn user_fingerprint(resource: &Value, managed: &[ScimPath]) -> String {
    fingerprint_of(managed, |path| path.get(resource).filter(|v| !v.is_null()))
}

/// `user_fingerprint` over the values `get` reads.
fn fingerprint_of<'a>(managed: &[ScimPath], get: impl Fn(&ScimPath) -> Option<&'a Value>) -> String {
    let mut paths: Vec<&ScimPath> = managed.iter().collect();
    paths.sort();
    paths.dedup();
    // serde_json's maps are sorted, so a value always prints to the same bytes.
    let parts: Vec<String> =
        paths.iter().map(|path| format!("{path}\u{0}{}", get(path).unwrap_or(&Value::Null))).collect();
    sha256_hex(parts.iter().map(String::as_bytes))
}

/// sha256 over a group's display name and its sorted member ids.
pub fn group_fingerprint(display_name: &str, members: &BTreeSet<String>) -> String {
    sha256_hex(std::iter::once(display_name.as_bytes()).chain(members.iter().map(String::as_bytes)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(list: &[&str]) -> Vec<ScimPath> {
        list.iter().map(|p| ScimPath::parse(p).unwrap()).collect()
    }

    #[test]
    fn a_user_fingerprint_sees_managed_attributes_only() {
        let managed = paths(&["userName", "title", "name.givenName"]);
        let user = json!({"id": "1", "userName": "a", "title": "Agent", "name": {"givenName": "Ann"}, "nickName": "x"});
        let base = user_fingerprint(&user, &managed);

        let mut unmanaged = user.clone();
        unmanaged["nickName"] = json!("y");
        assert_eq!(user_fingerprint(&unmanaged, &managed), base, "an unmanaged edit does not matter");

        let mut managed_edit = user.clone();
        managed_edit["name"]["givenName"] = json!("Anne");
        assert_ne!(user_fingerprint(&managed_edit, &managed), base);

        let mut removed = user.clone();
        removed.as_object_mut().unwrap().remove("title");
        assert_ne!(user_fingerprint(&removed, &managed), base);

        let reordered = paths(&["title", "name.givenName", "userName", "title"]);
        assert_eq!(user_fingerprint(&user, &reordered), base, "path order and duplicates do not matter");
    }

    #[test]
    fn a_group_fingerprint_sees_name_and_members() {
        let members: BTreeSet<String> = ["a".to_owned(), "b".to_owned()].into();
        let base = group_fingerprint("Support", &members);
        assert_ne!(group_fingerprint("Support 2", &members), base);
        assert_ne!(group_fingerprint("Support", &["a".to_owned()].into()), base);
    }

    #[test]
    fn the_etag_wins_when_the_service_keeps_them() {
        let mut user = crate::current::CurrentUser::from_resource(json!({"id": "1", "userName": "a"})).unwrap();
        assert!(matches!(Precondition::for_user(&user, &[]), Precondition::Sha256(_)));
        user.version = Some("W/\"3\"".into());
        assert_eq!(Precondition::for_user(&user, &[]), Precondition::Etag("W/\"3\"".into()));
        assert_eq!(serde_json::to_value(Precondition::Absent).unwrap(), json!("absent"));
        assert_eq!(serde_json::to_value(Precondition::Etag("v".into())).unwrap(), json!({"etag": "v"}));
    }
}
