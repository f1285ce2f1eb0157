//! An in-memory SCIM 2.0 service (RFC 7644), served over HTTP on 127.0.0.1 with a random port.
//!
//! It backs `scimform demo` and the apply tests. It is a test double, not a product: Users and
//! Groups, `eq` filters, paging, PATCH with the path forms scimform sends, ETags in
//! `meta.version` with `If-Match` (412 when stale), and a counter of the writes it received.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::scim::patch::PatchRequest;
use crate::scim::path::get_ci;
use crate::scim::resource::{LIST_RESPONSE_SCHEMA, ScimErrorBody};
use crate::scim::{EqFilter, GROUP_SCHEMA, USER_SCHEMA};
use crate::service::genesys_rules::{self, GenesysRules, Refusal};

/// Where the embedded server mounts its endpoints.
pub const BASE_PATH: &str = "/scim/v2";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Users,
    Groups,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Users => "User",
            Kind::Groups => "Group",
        }
    }
}

/// The server's data. Build one, seed it, then `MemoryServer::start` it.
#[derive(Debug, Default)]
pub struct MemoryStore {
    users: BTreeMap<String, Value>,
    groups: BTreeMap<String, Value>,
    next_id: u64,
    writes: u64,
    token: Option<String>,
    /// Announce no PATCH support and answer PATCH with 501 (a service without PATCH).
    no_patch: bool,
    no_etags: bool,
    recorded: Vec<RecordedWrite>,
    /// Answers as Genesys Cloud does (`genesys_rules`): only active users unless filtered,
    /// pages, filters and write shapes refused as documented, its forms of a stale `If-Match`.
    genesys: Option<GenesysRules>,
    /// Does not refuse a second user with the same `userName` (services that do not enforce it).
    no_unique_names: bool,
    /// Fault injection: writes (method, path prefix) that are stored and then answered 503, as
    /// a proxy that loses the answer would, this many times each.
    lost_answers: Vec<(String, String, usize)>,
    /// Lower-cased `userName`/`displayName` -> id, so a create checks uniqueness without a scan.
    /// Entries are added on every write and checked on use (a renamed resource leaves a stale one).
    names: std::collections::HashMap<(Kind, String), String>,
}

/// A write the server received, as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedWrite {
    pub method: String,
    /// Relative to the base URL: `/Users/{id}`.
    pub path: String,
    pub body: Option<Value>,
}

impl RecordedWrite {
    fn new(method: &str, path: String, body: Option<&Value>) -> Self {
        Self { method: method.to_owned(), path, body: body.cloned() }
    }
}

impl MemoryStore {
    /// A store that requires `Authorization: Bearer {token}` when `token` is given.
    pub fn new(token: Option<&str>) -> Self {
        Self { token: token.map(str::to_owned), ..Self::default() }
    }

    /// A service that does not implement PATCH.
    #[must_use]
    pub fn without_patch(mut self) -> Self {
        self.no_patch = true;
        self
    }

    /// A service that keeps no versions: no `meta.version`, no `ETag`, `etag.supported: false`.
    #[must_use]
    pub fn without_etags(mut self) -> Self {
        self.no_etags = true;
        self
    }

    /// Genesys Cloud's SCIM API, as strict as its documentation (see `genesys_rules`).
    #[must_use]
    pub fn genesys(mut self, rules: GenesysRules) -> Self {
        self.genesys = Some(rules);
        self
    }

    /// A service that keeps a second user with a `userName` already taken.
    #[must_use]
    pub fn without_unique_names(mut self) -> Self {
        self.no_unique_names = true;
        self
    }

    /// Stores the next `times` writes of `method` under `path_prefix` (`/Users`, `/Groups/`)
    /// and then answers them 503: the write landed, its answer was lost.
    #[must_use]
    pub fn losing_answers(mut self, method: &str, path_prefix: &str, times: usize) -> Self {
        self.lost_answers.push((method.to_owned(), path_prefix.to_owned(), times));
        self
    }

    /// Drops the version a service without ETags would not have kept.
    fn settle(no_etags: bool, resource: &mut Value) {
        if no_etags && let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
            meta.remove("version");
        }
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_id)
    }

    fn collection(&mut self, kind: Kind) -> &mut BTreeMap<String, Value> {
        match kind {
            Kind::Users => &mut self.users,
            Kind::Groups => &mut self.groups,
        }
    }

    fn stamp(kind: Kind, id: &str, resource: &mut Value, version: u64) {
        if let Value::Object(object) = resource {
            object.insert("id".into(), Value::String(id.to_owned()));
            object.insert(
                "meta".into(),
                json!({"resourceType": kind.name(), "version": format!("W/\"{version}\""),
                       "location": format!("{BASE_PATH}/{}s/{id}", kind.name())}),
            );
        }
    }

    fn insert(&mut self, kind: Kind, mut resource: Value) -> String {
        let id = self.new_id();
        Self::stamp(kind, &id, &mut resource, 1);
        Self::settle(self.no_etags, &mut resource);
        self.collection(kind).insert(id.clone(), resource);
        self.index(kind, &id);
        id
    }

    fn unique_attribute(kind: Kind) -> &'static str {
        if kind == Kind::Users { "userName" } else { "displayName" }
    }

    /// Notes the resource's current unique name.
    fn index(&mut self, kind: Kind, id: &str) {
        let name =
            self.collection(kind).get(id).and_then(|r| r.get(Self::unique_attribute(kind))).and_then(Value::as_str);
        if let Some(name) = name.map(str::to_lowercase) {
            self.names.insert((kind, name), id.to_owned());
        }
    }

    /// Whether a resource already has this unique name.
    fn name_taken(&mut self, kind: Kind, name: &str) -> bool {
        let key = (kind, name.to_lowercase());
        let Some(id) = self.names.get(&key).cloned() else { return false };
        let unique = Self::unique_attribute(kind);
        let still = self
            .collection(kind)
            .get(&id)
            .and_then(|r| r.get(unique))
            .and_then(Value::as_str)
            .is_some_and(|n| n.eq_ignore_ascii_case(name));
        if !still {
            self.names.remove(&key);
        }
        still
    }

    /// Adds a user (a SCIM resource without `id`); returns its id.
    pub fn insert_user(&mut self, mut resource: Value) -> String {
        if let Value::Object(o) = &mut resource {
            o.entry("schemas").or_insert_with(|| json!([USER_SCHEMA]));
        }
        self.insert(Kind::Users, resource)
    }

    /// Adds a group with the given member ids; returns its id.
    pub fn insert_group(&mut self, display_name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        self.insert(Kind::Groups, json!({"schemas": [GROUP_SCHEMA], "displayName": display_name, "members": members}))
    }
}

type Shared = Arc<Mutex<MemoryStore>>;

/// A running embedded server; stops when dropped.
#[derive(Debug)]
pub struct MemoryServer {
    base_url: String,
    store: Shared,
    shutdown: Option<oneshot::Sender<()>>,
}

impl MemoryServer {
    /// Serves `store` on 127.0.0.1 with a port chosen by the OS.
    pub async fn start(store: MemoryStore) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let store: Shared = Arc::new(Mutex::new(store));
        let router = Router::new()
            .route(&format!("{BASE_PATH}/ServiceProviderConfig"), get(service_provider_config))
            .route(&format!("{BASE_PATH}/Users"), get(list_users).post(create_user))
            .route(
                &format!("{BASE_PATH}/Users/{{id}}"),
                get(get_user).put(put_user).patch(patch_user).delete(delete_user),
            )
            .route(&format!("{BASE_PATH}/Groups"), get(list_groups).post(create_group))
            .route(
                &format!("{BASE_PATH}/Groups/{{id}}"),
                get(get_group).put(put_group).patch(patch_group).delete(delete_group),
            )
            .with_state(store.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self { base_url: format!("http://{address}{BASE_PATH}"), store, shutdown: Some(tx) })
    }

    /// The SCIM base URL, e.g. `http://127.0.0.1:40123/scim/v2`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryStore> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes (POST, PUT, PATCH, DELETE) received since start or the last `reset_writes`.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    pub fn reset_writes(&self) {
        let mut store = self.lock();
        store.writes = 0;
        store.recorded.clear();
    }

    /// The writes received since start or the last `reset_writes`, in order.
    pub fn recorded_writes(&self) -> Vec<RecordedWrite> {
        self.lock().recorded.clone()
    }

    /// All users, sorted by id.
    pub fn users(&self) -> Vec<Value> {
        self.lock().users.values().cloned().collect()
    }

    /// A user by `userName` (case-insensitive).
    pub fn user(&self, user_name: &str) -> Option<Value> {
        self.lock()
            .users
            .values()
            .find(|u| u.get("userName").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(user_name)))
            .cloned()
    }

    /// Member ids of the group with this display name (empty when there is none).
    pub fn group_members(&self, display_name: &str) -> Vec<String> {
        self.lock()
            .groups
            .values()
            .filter(|g| g.get("displayName").and_then(Value::as_str) == Some(display_name))
            .flat_map(|g| g.get("members").and_then(Value::as_array).cloned().unwrap_or_default())
            .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    pub fn group(&self, id: &str) -> Option<Value> {
        self.lock().groups.get(id).cloned()
    }

    /// Changes a resource behind a client's back (tests of drift and stale plans).
    pub fn edit_user(&self, id: &str, edit: impl FnOnce(&mut Value)) {
        let mut store = self.lock();
        let no_etags = store.no_etags;
        if let Some(user) = store.users.get_mut(id) {
            edit(user);
            bump_version(user);
            MemoryStore::settle(no_etags, user);
        }
        store.index(Kind::Users, id);
    }
}

impl Drop for MemoryServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn scim_error(status: StatusCode, scim_type: Option<&str>, detail: impl Into<String>) -> Response {
    (status, axum::Json(ScimErrorBody::new(status.as_u16(), scim_type, detail))).into_response()
}

fn resource_response(status: StatusCode, resource: &Value) -> Response {
    let mut response = (status, axum::Json(resource.clone())).into_response();
    if let Some(version) = resource.pointer("/meta/version").and_then(Value::as_str)
        && let Ok(value) = HeaderValue::from_str(version)
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

fn version_number(resource: &Value) -> u64 {
    resource
        .pointer("/meta/version")
        .and_then(Value::as_str)
        .and_then(|v| v.trim_start_matches("W/").trim_matches('"').parse().ok())
        .unwrap_or(0)
}

fn bump_version(resource: &mut Value) {
    let next = version_number(resource) + 1;
    if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert("version".into(), Value::String(format!("W/\"{next}\"")));
    }
}

/// Checks the bearer token, counts writes, and runs `f` on the locked store.
fn with_store(
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

fn precondition(headers: &HeaderMap, current: &Value, genesys: Option<&GenesysRules>) -> Option<Response> {
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
fn genesys_refusal(rules: &GenesysRules, kind: Kind, resource: &Value, before: Option<&Value>) -> Option<Response> {
    let refused = match kind {
        Kind::Users => genesys_rules::refuse_user(resource, before),
        Kind::Groups => genesys_rules::refuse_group_write(resource, rules),
    };
    refused.map(refusal)
}

fn refusal((status, scim_type, detail): Refusal) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = scim_error(status, scim_type, detail);
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn service_provider_config(State(s): State<Shared>) -> Response {
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

fn list(store: &Shared, headers: &HeaderMap, kind: Kind, query: &BTreeMap<String, String>) -> Response {
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
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r.as_object().and_then(|o| get_ci(o, &f.attribute)))))
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

fn create(store: &Shared, headers: &HeaderMap, kind: Kind, body: Value) -> Response {
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

fn read(store: &Shared, headers: &HeaderMap, kind: Kind, id: &str) -> Response {
    with_store(store, headers, None, |store| match store.collection(kind).get(id) {
        Some(resource) => resource_response(StatusCode::OK, resource),
        None => scim_error(StatusCode::NOT_FOUND, None, format!("{} `{id}` not found", kind.name())),
    })
}

fn replace(store: &Shared, headers: &HeaderMap, kind: Kind, id: &str, body: Value) -> Response {
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

fn patch(store: &Shared, headers: &HeaderMap, kind: Kind, id: &str, body: Value) -> Response {
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

fn delete(store: &Shared, headers: &HeaderMap, kind: Kind, id: &str) -> Response {
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

async fn list_users(State(s): State<Shared>, h: HeaderMap, Query(q): Q) -> Response {
    list(&s, &h, Kind::Users, &q)
}
async fn list_groups(State(s): State<Shared>, h: HeaderMap, Query(q): Q) -> Response {
    list(&s, &h, Kind::Groups, &q)
}
async fn create_user(State(s): State<Shared>, h: HeaderMap, axum::Json(b): Body) -> Response {
    create(&s, &h, Kind::Users, b)
}
async fn create_group(State(s): State<Shared>, h: HeaderMap, axum::Json(b): Body) -> Response {
    create(&s, &h, Kind::Groups, b)
}
async fn get_user(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Response {
    read(&s, &h, Kind::Users, &id)
}
async fn get_group(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Response {
    read(&s, &h, Kind::Groups, &id)
}
async fn put_user(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>, axum::Json(b): Body) -> Response {
    replace(&s, &h, Kind::Users, &id, b)
}
async fn put_group(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>, axum::Json(b): Body) -> Response {
    replace(&s, &h, Kind::Groups, &id, b)
}
async fn patch_user(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>, axum::Json(b): Body) -> Response {
    patch(&s, &h, Kind::Users, &id, b)
}
async fn patch_group(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>, axum::Json(b): Body) -> Response {
    patch(&s, &h, Kind::Groups, &id, b)
}
async fn delete_user(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Response {
    delete(&s, &h, Kind::Users, &id)
}
async fn delete_group(State(s): State<Shared>, h: HeaderMap, Path(id): Path<String>) -> Response {
    delete(&s, &h, Kind::Groups, &id)
}
