//! The embedded server's endpoints: listing with `eq` filters and paging, create, read, PUT,
//! PATCH and DELETE with ETags, each through the store's lock; the Genesys mode's refusals.

use std::collections::BTreeMap;
use std::sync::PoisonError;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Kind, MemoryStore, RecordedWrite, Shared};
use crate::scim::EqFilter;
use crate::scim::patch::PatchRequest;
use crate::scim::resource::{LIST_RESPONSE_SCHEMA, ScimErrorBody};
use crate::service::genesys_rules::{self, GenesysRules, Refusal};

pub(super) fn scim_error(status: StatusCode, scim_type: Option<&str>, detail: impl Into<String>) -> Response {
    (status, axum::Json(ScimErrorBody::new(status.as_u16(), scim_type, detail))).into_response()
}

pub(super) fn resource_response(status: StatusCode, resource: &Value) -> Response {
    let mut response = (status, axum::Json(resource.clone())).into_response();
    if let Some(version) = resource.pointer("/meta/version").and_then(Value::as_str)
        && let Ok(value) = HeaderValue::from_str(version)
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

pub(super) fn version_number(resource: &Value) -> u64 {
    resource
        .pointer("/meta/version")
        .and_then(Value::as_str)
        .and_then(|v| v.trim_start_matches("W/").trim_matches('"').parse().ok())
        .unwrap_or(0)
}

pub(super) fn bump_version(resource: &mut Value) {
    let next = version_number(resource) + 1;
    if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert("version".into(), Value::String(format!("W/\"{next}\"")));
    }
}

/// Checks the bearer token, counts writes, and runs `f` on the locked store.
pub(super) fn with_store(
    store: &Shared,
    headers: &HeaderMap,
    write: Option<RecordedWrite>,
    f: impl FnOnce(&mut MemoryStore) -> Response,
) -> Response {
    let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
    let lost = write.as_ref().and_then(|write| {
        store.lost_answers.iter().position(|(method, prefix, times)| {
            *times > 0 && *method == write.method && write.path.starts_with(prefix.as_str())
        })
    });
    if let Some(write) = write {
        store.writes += 1;
        store.recorded.push(write);
    }
    if let Some(token) = &store.token {
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if given != Some(format!("Bearer {token}").as_str()) {
            return scim_error(StatusCode::UNAUTHORIZED, None, "missing or wrong bearer token");
        }
    }
    let response = f(&mut store);
    if let Some(index) = lost
        && response.status().is_success()
    {
        store.lost_answers[index].2 -= 1;
        return scim_error(StatusCode::SERVICE_UNAVAILABLE, None, "the answer was lost (fault injection)");
    }
    response
}

pub(super) fn precondition(headers: &HeaderMap, current: &Value, genesys: Option<&GenesysRules>) -> Option<Response> {
    let wanted = headers.get(header::IF_MATCH)?.to_str().ok()?;
    let have = current.pointer("/meta/version").and_then(Value::as_str).unwrap_or_default();
    if wanted == "*" || wanted == have {
        return None;
    }
    Some(match genesys {
        Some(rules) => refusal(genesys_rules::stale(rules, have, wanted)),
        None => scim_error(StatusCode::PRECONDITION_FAILED, None, format!("version is {have}, not {wanted}")),
    })
}

/// What the Genesys double refuses of a write: a user as it would be left, a group write's size.
pub(super) fn genesys_refusal(
    rules: &GenesysRules,
    kind: Kind,
    resource: &Value,
    before: Option<&Value>,
) -> Option<Response> {
    let refused = match kind {
        Kind::Users => genesys_rules::refuse_user(resource, before),
        Kind::Groups => genesys_rules::refuse_group_write(resource, rules),
    };
    refused.map(refusal)
}

pub(super) fn refusal((status, scim_type, detail): Refusal) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = scim_error(status, scim_type, detail);
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

pub(super) async fn service_provider_config(State(s): State<Shared>) -> Response {
    let (patch, etag) = {
        let store = s.lock().unwrap_or_else(PoisonError::into_inner);
        (!store.no_patch, !store.no_etags)
    };
    axum::Json(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": patch},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": 200},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": etag},
        "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "description": "Bearer token"}]
    }))
    .into_response()
}

pub(super) fn list(store: &Shared, headers: &HeaderMap, kind: Kind, query: &BTreeMap<String, String>) -> Response {
    with_store(store, headers, None, |store| {
        if store.genesys.is_some() {
            let count = query.get("count").and_then(|c| c.parse().ok());
            let excluded = query.get("excludedAttributes").map(String::as_str);
            let filter = query.get("filter").map(String::as_str);
            if let Some(refused) = genesys_rules::refuse_list(kind == Kind::Users, count, excluded, filter) {
                return refusal(refused);
            }
        }
        // Genesys lists the active users only, unless a filter says otherwise.
        let only_active = store.genesys.is_some() && kind == Kind::Users && !query.contains_key("filter");
        let filter = match query.get("filter") {
            None => None,
            Some(text) => match EqFilter::parse(text) {
                Some(f) => Some(f),
                None => {
                    return scim_error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidFilter"),
                        format!("unsupported filter `{text}`"),
                    );
                }
            },
        };
        let matching: Vec<&Value> = store
            .collection(kind)
            .values()
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches_resource(r)))
            .filter(|r| !only_active || r.get("active").and_then(Value::as_bool) != Some(false))
            .collect();
        let start = query.get("startIndex").and_then(|s| s.parse::<usize>().ok()).unwrap_or(1).max(1);
        let count = query.get("count").and_then(|s| s.parse::<usize>().ok()).unwrap_or(100).min(200);
        let page: Vec<Value> = matching.iter().skip(start - 1).take(count).map(|r| (*r).clone()).collect();
        axum::Json(json!({
            "schemas": [LIST_RESPONSE_SCHEMA],
            "totalResults": matching.len(),
            "startIndex": start,
            "itemsPerPage": page.len(),
            "Resources": page,
        }))
        .into_response()
    })
}

pub(super) fn create(store: &Shared, headers: &HeaderMap, kind: Kind, body: Value) -> Response {
    let write = RecordedWrite::new("POST", format!("/{}s", kind.name()), Some(&body));
    with_store(store, headers, Some(write), |store| {
        if !body.is_object() {
            return scim_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"), "expected a JSON object");
        }
        let unique = MemoryStore::unique_attribute(kind);
        let Some(name) = body.get(unique).and_then(Value::as_str).filter(|n| !n.is_empty()) else {
            return scim_error(StatusCode::BAD_REQUEST, Some("invalidValue"), format!("`{unique}` is required"));
        };
        if !(kind == Kind::Users && store.no_unique_names) && store.name_taken(kind, name) {
            return scim_error(StatusCode::CONFLICT, Some("uniqueness"), format!("{unique} `{name}` already exists"));
        }
        if let Some(refused) = store.genesys.as_ref().and_then(|rules| genesys_refusal(rules, kind, &body, None)) {
            return refused;
        }
        let id = store.insert(kind, body);
        let resource = store.collection(kind).get(&id).cloned().unwrap_or_default();
        resource_response(StatusCode::CREATED, &resource)
    })
}

pub(super) fn read(store: &Shared, headers: &HeaderMap, kind: Kind, id: &str) -> Response {
    with_store(store, headers, None, |store| match store.collection(kind).get(id) {
        Some(resource) => resource_response(StatusCode::OK, resource),
        None => scim_error(StatusCode::NOT_FOUND, None, format!("{} `{id}` not found", kind.name())),
    })
}

pub(super) fn replace(store: &Shared, headers: &HeaderMap, kind: Kind, id: &str, body: Value) -> Response {
    let write = RecordedWrite::new("PUT", format!("/{}s/{id}", kind.name()), Some(&body));
    with_store(store, headers, Some(write), |store| {
        let no_etags = store.no_etags;
        let genesys = store.genesys;
        let Some(current) = store.collection(kind).get_mut(id) else {
            return scim_error(StatusCode::NOT_FOUND, None, format!("{} `{id}` not found", kind.name()));
        };
        if let Some(refused) = precondition(headers, current, genesys.as_ref()) {
            return refused;
        }
        if !body.is_object() {
            return scim_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"), "expected a JSON object");
        }
        if let Some(refused) = genesys.as_ref().and_then(|rules| genesys_refusal(rules, kind, &body, Some(current))) {
            return refused;
        }
        let version = version_number(current) + 1;
        let mut next = body;
        MemoryStore::stamp(kind, id, &mut next, version);
        MemoryStore::settle(no_etags, &mut next);
        *current = next;
        let response = resource_response(StatusCode::OK, current);
        store.index(kind, id);
        response
    })
}

pub(super) fn patch(store: &Shared, headers: &HeaderMap, kind: Kind, id: &str, body: Value) -> Response {
    let write = RecordedWrite::new("PATCH", format!("/{}s/{id}", kind.name()), Some(&body));
    with_store(store, headers, Some(write), |store| {
        if store.no_patch {
            return scim_error(StatusCode::NOT_IMPLEMENTED, None, "PATCH is not supported");
        }
        let no_etags = store.no_etags;
        let genesys = store.genesys;
        let Some(current) = store.collection(kind).get_mut(id) else {
            return scim_error(StatusCode::NOT_FOUND, None, format!("{} `{id}` not found", kind.name()));
        };
        if let Some(refused) = precondition(headers, current, genesys.as_ref()) {
            return refused;
        }
        if kind == Kind::Groups
            && let Some(refused) = genesys.as_ref().and_then(|rules| genesys_rules::refuse_group_write(&body, rules))
        {
            return refusal(refused);
        }
        let request: PatchRequest = match serde_json::from_value(body) {
            Ok(r) => r,
            Err(e) => return scim_error(StatusCode::BAD_REQUEST, Some("invalidSyntax"), e.to_string()),
        };
        // Operations apply all-or-nothing (RFC 7644 §3.5.2).
        let mut next = current.clone();
        for operation in &request.operations {
            if let Err(error) = crate::scim::patch::apply(&mut next, operation) {
                return scim_error(StatusCode::BAD_REQUEST, Some(error.scim_type), error.detail);
            }
        }
        // The user as the operations leave it (a group's size was checked on the request).
        if kind == Kind::Users
            && let Some(refused) = genesys.as_ref().and_then(|rules| genesys_refusal(rules, kind, &next, Some(current)))
        {
            return refused;
        }
        bump_version(&mut next);
        MemoryStore::settle(no_etags, &mut next);
        *current = next;
        let response = resource_response(StatusCode::OK, current);
        store.index(kind, id);
        response
    })
}

pub(super) fn delete(store: &Shared, headers: &HeaderMap, kind: Kind, id: &str) -> Response {
    let write = RecordedWrite::new("DELETE", format!("/{}s/{id}", kind.name()), None);
    with_store(store, headers, Some(write), |store| {
        let genesys = store.genesys;
        let Some(current) = store.collection(kind).get(id) else {
            return scim_error(StatusCode::NOT_FOUND, None, format!("{} `{id}` not found", kind.name()));
        };
        if let Some(refused) = precondition(headers, current, genesys.as_ref()) {
            return refused;
        }
        store.collection(kind).remove(id);
        if kind == Kind::Users {
            for group in store.groups.values_mut() {
                if let Some(Value::Array(members)) = group.get_mut("members") {
                    members.retain(|m| m.get("value").and_then(Value::as_str) != Some(id));
                }
            }
        }
        StatusCode::NO_CONTENT.into_response()
    })
}

type Q = Query<BTreeMap<String, String>>;
type Body = axum::Json<Value>;

pub(super) async fn list_users(State(s): State<Shared>, h: HeaderMap, Query(q): Q) -> Response {
    list(&s, &h, Kind::Users, &q)
}
pub(super) async fn list_groups(State(s): State<Shared>, h: HeaderMap, Query(q): Q) -> Response {
    list(&s, &h, Kind::Groups, &q)
}
pub(super) async fn create_user(State(s): State<Shared>, h: HeaderMap, axum::Json(b): Body) -> Response {
    create(&s, &h, Kind::Users, b)
}
pub(super) async fn create_group(State(s): State<Shared>, h: HeaderMap, axum::Json(b): Body) -> Response {
    create(&s, &h, Kind::Groups, b)
}
pub(super) async fn get_user(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Response {
    read(&s, &h, Kind::Users, &id)
}
pub(super) async fn get_group(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Response {
    read(&s, &h, Kind::Groups, &id)
}
pub(super) async fn put_user(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    axum::Json(b): Body,
) -> Response {
    replace(&s, &h, Kind::Users, &id, b)
}
pub(super) async fn put_group(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    axum::Json(b): Body,
) -> Response {
    replace(&s, &h, Kind::Groups, &id, b)
}
pub(super) async fn patch_user(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    axum::Json(b): Body,
) -> Response {
    patch(&s, &h, Kind::Users, &id, b)
}
pub(super) async fn patch_group(
    State(s): State<Shared>,
    h: HeaderMap,
    Path(id): Path<String>,
    axum::Json(b): Body,
) -> Response {
    patch(&s, &h, Kind::Groups, &id, b)
}
pub(super) async fn delete_user(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Response {
    delete(&s, &h, Kind::Users, &id)
}
pub(super) async fn delete_group(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Response {
    delete(&s, &h, Kind::Groups, &id)
}
