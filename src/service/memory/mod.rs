//! An in-memory SCIM 2.0 service (RFC 7644), served over HTTP on 127.0.0.1 with a random port.
//!
//! It backs `scimform demo` and the apply tests. It is a test double, not a product: Users and
//! Groups, `eq` filters, paging, PATCH with the path forms scimform sends, ETags in
//! `meta.version` with `If-Match` (412 when stale), and a counter of the writes it received.

mod handlers;

use self::handlers::{
    bump_version, create_group, create_user, delete_group, delete_user, get_group, get_user, list_groups, list_users,
    patch_group, patch_user, put_group, put_user, service_provider_config,
};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::scim::{GROUP_SCHEMA, USER_SCHEMA};
use crate::service::genesys_rules::GenesysRules;

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
    /// Fault injection: every write is answered this long after it was stored (a slow service).
    write_delay: Option<std::time::Duration>,
    /// Every request is handled this long after it arrived (a cloud API's latency).
    latency: Option<std::time::Duration>,
    /// At most this many requests in any minute; more are answered 429 with `Retry-After`, as
    /// Genesys answers a client over its rate limit. The times of the last minute's requests.
    rate_limit: Option<(u32, std::collections::VecDeque<tokio::time::Instant>)>,
    /// Requests being handled now, and the most there have been at once.
    in_flight: (usize, usize),
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

    /// Answers each write `delay` after storing it: a slow service, with writes in flight.
    #[must_use]
    pub fn slow_writes(mut self, delay: std::time::Duration) -> Self {
        self.write_delay = Some(delay);
        self
    }

    /// Handles every request `latency` after it arrives: a cloud API far away.
    #[must_use]
    pub fn with_latency(mut self, latency: std::time::Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    /// Allows `per_minute` requests in any minute and answers the others 429 with `Retry-After`.
    #[must_use]
    pub fn rate_limited(mut self, per_minute: u32) -> Self {
        self.rate_limit = Some((per_minute, std::collections::VecDeque::new()));
        self
    }

    /// Whether a request arriving `now` is over the rate limit: the seconds to wait, if so.
    fn over_rate(&mut self, now: tokio::time::Instant) -> Option<u64> {
        let (per_minute, recent) = self.rate_limit.as_mut()?;
        let minute = std::time::Duration::from_secs(60);
        while recent.front().is_some_and(|t| now.duration_since(*t) >= minute) {
            recent.pop_front();
        }
        if recent.len() < *per_minute as usize {
            recent.push_back(now);
            return None;
        }
        let oldest = recent.front().copied().unwrap_or(now);
        Some((minute.saturating_sub(now.duration_since(oldest))).as_secs().max(1))
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

/// The fault injections around every request: the rate limit (429), the latency before it is
/// handled, and `slow_writes` (a write is stored at once and answered after the delay).
async fn answer_late(
    axum::extract::State(store): axum::extract::State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    #[expect(clippy::disallowed_methods, reason = "the rate limit and the latency are measured in time")]
    let now = tokio::time::Instant::now();
    let (over, latency, write_delay) = {
        let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
        store.in_flight.0 += 1;
        store.in_flight.1 = store.in_flight.1.max(store.in_flight.0);
        (store.over_rate(now), store.latency, store.write_delay)
    };
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    store.lock().unwrap_or_else(PoisonError::into_inner).in_flight.0 -= 1;
    if let Some(seconds) = over {
        let body = serde_json::json!({"schemas": [crate::scim::resource::ERROR_SCHEMA], "status": "429", "detail": "Rate limit exceeded"});
        return axum::response::IntoResponse::into_response((
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            [(axum::http::header::RETRY_AFTER, seconds.to_string())],
            axum::Json(body),
        ));
    }
    let write = request.method() != axum::http::Method::GET;
    let response = next.run(request).await;
    if let Some(delay) = write_delay.filter(|_| write) {
        tokio::time::sleep(delay).await;
    }
    response
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
            .layer(axum::middleware::from_fn_with_state(store.clone(), answer_late))
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

    /// The most requests the server has handled at once (under `with_latency`, how many a client
    /// had in flight).
    pub fn max_in_flight(&self) -> usize {
        self.lock().in_flight.1
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
