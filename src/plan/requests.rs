//! `Plan` -> SCIM requests, as values (kube-core style: built here, sent by the client).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Action, AttributeChange, GroupChange, UserChange};
use crate::manifest::model::MembershipMethod;
use crate::scim::filter::quote;
use crate::scim::request::sha256_hex;
use crate::scim::{GROUP_SCHEMA, Method, PatchOperation, PatchRequest, ScimRequest, USER_SCHEMA};

/// The request that carries out one user change, with references to users created by the
/// plan left out (see `user_request_resolved`).
pub fn user_request(change: &UserChange) -> ScimRequest {
    user_request_resolved(change, &|_| None)
}

/// The request for one user change; `resolve` gives the target ids of users created earlier in
/// the same apply, for references known only after apply (a manager created in this run).
/// A create's POST never carries those: `reference_followup` sets them once the user exists.
pub fn user_request_resolved(change: &UserChange, resolve: &dyn Fn(&str) -> Option<String>) -> ScimRequest {
    let id = change.target_id.as_deref().unwrap_or_default();
    match change.action {
        Action::Create => ScimRequest::new(Method::Post, "/Users").with_body(create_body(change)),
        Action::Delete => {
            ScimRequest::new(Method::Delete, format!("/Users/{id}")).with_if_match(change.precondition.etag())
        }
        Action::Update | Action::Adopt | Action::Disable | Action::Deprovision => {
            let operations = change.changes.iter().flat_map(|c| operations(c, resolve)).collect();
            ScimRequest::new(Method::Patch, format!("/Users/{id}"))
                .with_body(to_json(&PatchRequest::new(operations)))
                .with_if_match(change.precondition.etag())
        }
    }
}

/// The operations for one attribute change.
fn operations(c: &AttributeChange, resolve: &dyn Fn(&str) -> Option<String>) -> Vec<PatchOperation> {
    let after = match &c.reference {
        // Known after apply: the referenced user's new id, or nothing yet.
        Some(key) => match resolve(key) {
            Some(id) => Some(Value::String(id)),
            None => return Vec::new(),
        },
        None => c.after.clone(),
    };
    match (&c.set, &c.before, after) {
        (Some(set), before, after) => set.operations(&c.path, before.as_deref(), after.as_ref()),
        (None, _, None) => vec![PatchOperation::remove(&c.path)],
        (None, None, Some(after)) => vec![PatchOperation::add(&c.path, after)],
        (None, Some(_), Some(after)) => vec![PatchOperation::replace(&c.path, after)],
    }
}

/// For a created user with references to users created in the same apply: the PATCH that sets
/// them on `id`, the new user's id. `None` when there is nothing to set.
pub fn reference_followup(
    change: &UserChange,
    id: &str,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> Option<ScimRequest> {
    let operations: Vec<PatchOperation> =
        change.changes.iter().filter(|c| c.reference.is_some()).flat_map(|c| operations(c, resolve)).collect();
    (!operations.is_empty()).then(|| {
        ScimRequest::new(Method::Patch, format!("/Users/{id}")).with_body(to_json(&PatchRequest::new(operations)))
    })
}

/// The keys of the users a change refers to and that the plan creates.
pub fn pending_references(change: &UserChange) -> impl Iterator<Item = &str> {
    change.changes.iter().filter_map(|c| c.reference.as_deref().map(String::as_str))
}

fn create_body(change: &UserChange) -> Value {
    let mut schemas: BTreeSet<String> = BTreeSet::new();
    let mut body = json!({});
    for c in &change.changes {
        if let Some(after) = &c.after {
            c.path.set(&mut body, after.clone());
            if let Some(schema) = c.path.schema() {
                schemas.insert(schema.to_owned());
            }
        }
    }
    let mut list = vec![Value::String(USER_SCHEMA.to_owned())];
    list.extend(schemas.into_iter().map(Value::String));
    if let Value::Object(object) = &mut body {
        object.insert("schemas".into(), Value::Array(list));
    }
    body
}

/// The request that carries out one group change, with members resolved by `resolve` (key ->
/// target id, for users created earlier in the same apply). Returns the keys it could not resolve.
pub fn group_request(change: &GroupChange, resolve: impl Fn(&str) -> Option<String>) -> (ScimRequest, Vec<String>) {
    let mut unresolved = Vec::new();
    let mut id_of = |m: &super::Member| {
        let id = m.id.clone().or_else(|| resolve(&m.key));
        if id.is_none() {
            unresolved.push(m.key.clone());
        }
        id
    };
    let path = format!("/Groups/{}", change.target_id);
    if change.create {
        let members: Vec<Value> = change.add.iter().filter_map(&mut id_of).map(|id| json!({"value": id})).collect();
        let body = json!({"schemas": [GROUP_SCHEMA], "displayName": change.display_name, "members": members});
        return (ScimRequest::new(Method::Post, "/Groups").with_body(body), unresolved);
    }
    let request = match change.method {
        MembershipMethod::Patch => {
            let added: Vec<Value> = change.add.iter().filter_map(&mut id_of).map(|id| json!({"value": id})).collect();
            // Large additions go in several operations of one request, so no single operation
            // carries thousands of values.
            let mut operations: Vec<PatchOperation> = added
                .chunks(change.members_per_operation.max(1))
                .map(|chunk| PatchOperation {
                    op: crate::scim::PatchOp::Add,
                    path: Some("members".into()),
                    value: Some(Value::Array(chunk.to_vec())),
                })
                .collect();
            for member in &change.remove {
                if let Some(id) = &member.id {
                    operations.push(PatchOperation {
                        op: crate::scim::PatchOp::Remove,
                        path: Some(format!("members[value eq {}]", quote(id))),
                        value: None,
                    });
                }
            }
            ScimRequest::new(Method::Patch, path).with_body(to_json(&PatchRequest::new(operations)))
        }
        MembershipMethod::Put => {
            let mut ids: Vec<String> = change.members.iter().filter_map(&mut id_of).collect();
            ids.sort();
            // The same membership always carries the same key: the group id and the sorted ids.
            let key = sha256_hex(std::iter::once(change.target_id.as_bytes()).chain(ids.iter().map(String::as_bytes)));
            let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
            let body = json!({"schemas": [GROUP_SCHEMA], "id": change.target_id, "displayName": change.display_name, "members": members});
            let mut request = ScimRequest::new(Method::Put, path).with_body(body);
            request.idempotency_key = Some(key);
            request
        }
    };
    (request.with_if_match(change.precondition.etag()), unresolved)
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::render::text::tests::realistic_plan;

    #[test]
    fn builds_the_wire_requests_of_a_plan() {
        let plan = realistic_plan();
        let mut requests: Vec<ScimRequest> = plan.users.iter().map(user_request).collect();
        let (group, unresolved) =
            group_request(&plan.groups[0], |key| (key == "cy.do@x.example").then(|| "new-id".to_owned()));
        assert!(unresolved.is_empty());
        requests.push(group);
        let text = serde_json::to_string_pretty(&requests).unwrap();
        insta::assert_snapshot!(text);
    }

    #[test]
    fn reports_members_it_cannot_resolve() {
        let plan = realistic_plan();
        let (request, unresolved) = group_request(&plan.groups[0], |_| None);
        assert_eq!(unresolved, vec!["cy.do@x.example".to_owned()]);
        let ops = request.body.unwrap()["Operations"].clone();
        assert_eq!(ops[0]["value"], json!([{"value": "t1"}]));
    }
}
