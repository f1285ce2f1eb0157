//! `ScimClient`: an RFC 7644 client over reqwest that an operator can leave running against
//! 50,000 users. Every request is paced (`pacing`), authenticated (`auth`), retried on 429,
//! 502-504, timeouts and resets with jittered backoff (`retry`), carries `If-Match` where the
//! service keeps ETags and an `Idempotency-Key` on writes, and is counted for the apply summary.
//! Every 2xx is success (PATCH may answer 204 with the new version only in `ETag`).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, IF_MATCH};
use serde_json::Value;
use tokio::sync::OnceCell;

use futures_util::StreamExt;

use super::listing::{MAX_PAGES, Taken, Walk, page_of};
use super::profile::ProfileSettings;
use super::{CurrentGroup, CurrentState, CurrentUser, TargetError, TargetReader, TargetWriter};
use crate::http::auth::Auth;
use crate::http::body::mib;
use crate::http::exchange::{Ended, Event, Policy, exchange};
use crate::http::heartbeat::Heartbeat;
use crate::http::pacing::Pacer;
use crate::http::retry::{Backoff, Verdict, verdict};
use crate::manifest::model::{ReadLimits, TargetConfig, TargetGroupRef};
use crate::scim::filter::{ListFilter, ModifiedAfter};
use crate::scim::resource::{ListResponse, ScimErrorBody, id_of};
use crate::scim::{EqFilter, Method, ScimPath, ScimRequest, ScimResponse};

const SCIM_JSON: &str = "application/scim+json";
/// Made once, not parsed from a string on every write (as `pacing`'s rate-limit names).
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// What the service supports, from `/ServiceProviderConfig` (generic) or the profile (Genesys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub etag: bool,
    pub patch: bool,
    /// The service filters listings (`filter.supported`); without it, listings are matched here.
    pub filter: bool,
    pub max_results: Option<usize>,
}

/// Requests by method and final status, retries, and waits the server imposed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestStats {
    pub by_status: BTreeMap<(Method, u16), usize>,
    pub retries: usize,
    pub throttled_waits: usize,
    pub token_refreshes: usize,
}

#[derive(Debug)]
pub struct ScimClient {
    http: reqwest::Client,
    base_url: String,
    auth: Auth,
    pacer: Pacer,
    backoff: Backoff,
    max_attempts: u32,
    profile: ProfileSettings,
    capabilities: OnceCell<Capabilities>,
    stats: Mutex<RequestStats>,
    /// Counts resources read by `list`; hidden unless a command shows it.
    progress: Mutex<indicatif::ProgressBar>,
    /// A listing keeps only these attributes of each user, page by page (`keep_only`).
    kept: Option<Vec<ScimPath>>,
    /// The users' match keys after `userName` (`users.match`), which the look for a lost POST
    /// tries too (`matching`).
    match_keys: Vec<ScimPath>,
    limits: ReadLimits,
    /// Requests a listing has in flight at most (`target.concurrency`).
    concurrency: usize,
    /// The newest `meta.lastModified` of the users listed so far (the service's clock).
    newest_modified: Mutex<Option<jiff::Timestamp>>,
    /// Started by the first request: each request's timeouts are then set without waking the
    /// runtime's timer driver (`heartbeat`).
    heartbeat: OnceLock<Heartbeat>,
}

impl ScimClient {
    /// A client for `config`. `managed` are the user attributes the manifest compares; profiles
    /// that trim list responses never trim these.
    pub fn new(config: &TargetConfig, managed: &[ScimPath]) -> Result<Self, TargetError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(u64::from(config.timeout_seconds)))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("scimform/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &config.ca_file {
            let certificates = crate::tls::reqwest_certificates(ca_file).map_err(|detail| {
                TargetError::Unsupported(format!("cannot use the target's `ca_file` `{}`: {detail}", ca_file.display()))
            })?;
            builder = builder.tls_certs_merge(certificates);
        }
        let http = builder.build().map_err(|error| TargetError::Transport { request: "client setup".into(), error })?;
        Ok(Self {
            auth: Auth::new(&config.auth, http.clone()),
            http,
            base_url: config.base_url.clone(),
            pacer: Pacer::new(config.requests_per_minute),
            backoff: Backoff::default(),
            max_attempts: config.max_attempts.max(1),
            profile: ProfileSettings::new(config.profile, managed),
            capabilities: OnceCell::new(),
            stats: Mutex::new(RequestStats::default()),
            progress: Mutex::new(indicatif::ProgressBar::hidden()),
            kept: None,
            match_keys: Vec::new(),
            limits: config.limits,
            concurrency: config.concurrency.max(1),
            newest_modified: Mutex::new(None),
            heartbeat: OnceLock::new(),
        })
    }

    /// Keeps only `managed` of each user a listing reads, as each page arrives: what planning
    /// reads, so 100,000 users are held as their managed attributes, not as whole resources.
    /// (A service without PATCH gets its PUT from a fresh read, never from a listing.)
    #[must_use]
    pub fn keep_only(mut self, managed: &[ScimPath]) -> Self {
        self.kept = Some(managed.to_vec());
        self
    }

    /// The users' match keys (`users.match`, in order): the look for a POST whose answer was
    /// lost tries each after `userName`.
    #[must_use]
    pub fn matching(mut self, keys: &[ScimPath]) -> Self {
        self.match_keys = keys.iter().filter(|k| !k.is("userName")).cloned().collect();
        self
    }

    /// Shorter waits between retries (tests).
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Counts the resources the following reads list on `bar`.
    pub fn report_progress_to(&self, bar: indicatif::ProgressBar) {
        *self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = bar;
    }

    /// What has been sent so far.
    pub fn stats(&self) -> RequestStats {
        self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn count(&self, f: impl FnOnce(&mut RequestStats)) {
        f(&mut self.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// The service's capabilities, read once per run.
    pub async fn capabilities(&self) -> Capabilities {
        *self
            .capabilities
            .get_or_init(|| async {
                if !self.profile.read_service_provider_config {
                    return Capabilities { etag: true, patch: true, filter: true, max_results: None };
                }
                let request = ScimRequest::new(Method::Get, "/ServiceProviderConfig");
                match self.execute(&request, &[], false).await {
                    Ok(ScimResponse { body: Some(config), .. }) => Capabilities {
                        etag: config.pointer("/etag/supported").and_then(Value::as_bool).unwrap_or(false),
                        patch: config.pointer("/patch/supported").and_then(Value::as_bool).unwrap_or(true),
                        filter: config.pointer("/filter/supported").and_then(Value::as_bool).unwrap_or(true),
                        max_results: config
                            .pointer("/filter/maxResults")
                            .and_then(Value::as_u64)
                            .and_then(|m| usize::try_from(m).ok())
                            .filter(|m| *m > 0),
                    },
                    other => {
                        let url = format!("{}/ServiceProviderConfig", self.base_url);
                        match other {
                            Err(TargetError::Status { status: 404, .. }) => tracing::warn!(
                                "{url} answered 404: is `target.base_url` the service's SCIM base URL (the one \
                                 that holds /Users and /Groups)? Assuming no ETags"
                            ),
                            Err(error) => tracing::warn!("cannot read {url}: {error}; assuming no ETags"),
                            Ok(_) => tracing::warn!("{url} answered no body; assuming no ETags"),
                        }
                        Capabilities { etag: false, patch: true, filter: true, max_results: None }
                    }
                }
            })
            .await
    }

    /// Sends one request: paced, authenticated, retried; `if_match` says whether the request's
    /// `If-Match` may be sent (the service keeps ETags).
    async fn execute(
        &self,
        request: &ScimRequest,
        query: &[(&str, String)],
        if_match: bool,
    ) -> Result<ScimResponse, TargetError> {
        self.heartbeat.get_or_init(Heartbeat::start);
        let label = request.to_string();
        let url = format!("{}{}", self.base_url, request.path);
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let body = request.wire_body();
        let idempotency_key = request.is_write().then(|| request.idempotency_key_for(body.as_deref()));
        let build = |authorization| {
            let mut builder =
                self.http.request(method.clone(), &url).header(AUTHORIZATION, authorization).header(ACCEPT, SCIM_JSON);
            if !query.is_empty() {
                builder = builder.query(query);
            }
            if let (true, Some(version)) = (if_match, &request.if_match) {
                builder = builder.header(IF_MATCH, version);
            }
            if let Some(key) = &idempotency_key {
                builder = builder.header(IDEMPOTENCY_KEY, key);
            }
            if let Some(body) = &body {
                builder = builder.header(CONTENT_TYPE, SCIM_JSON).body(body.clone());
            }
            builder
        };
        let policy = Policy {
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            max_body: self.limits.max_response_bytes,
            retry_server_errors: false,
        };
        // The service may have stored a POST whose answer was lost: look before sending it again.
        let look = || self.created_meanwhile(request);
        let observe = |event| {
            self.count(|s| match event {
                Event::Paced => s.throttled_waits += 1,
                Event::Retried => s.retries += 1,
                Event::Refreshed => s.token_refreshes += 1,
            });
        };
        let answer = match exchange(&self.auth, &self.pacer, policy, &label, build, look, observe).await {
            Ok(answer) => answer,
            Err(Ended::Found(found)) => return Ok(found),
            Err(Ended::Lookup(error)) => return Err(error),
            Err(Ended::Auth(error)) => return Err(error.into()),
            Err(Ended::Transport(error)) => return Err(TargetError::Transport { request: label, error }),
            Err(Ended::TooLarge { limit }) => {
                return Err(TargetError::TooLarge { request: label, limit_mib: mib(limit) });
            }
        };
        let status = answer.status;
        self.count(|s| *s.by_status.entry((request.method, status)).or_default() += 1);
        if verdict(status) == Verdict::Success {
            return parse_success(&label, status, &answer.headers, &answer.body);
        }
        let body = serde_json::from_slice::<ScimErrorBody>(&answer.body).ok().map(Box::new);
        Err(TargetError::Status { request: label, status, body })
    }

    /// Before a POST is sent again, whatever went wrong (a lost answer, a 5xx, a 429): the
    /// service may have stored the user already, so look for it first; a retry never makes a
    /// duplicate, also on a service that does not keep `userName` unique.
    ///
    /// Boxed: the look reads through `list`, which sends through `execute`, which calls this.
    fn created_meanwhile<'a>(
        &'a self,
        request: &'a ScimRequest,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Option<ScimResponse>, TargetError>> + Send + 'a>> {
        Box::pin(async move {
            if request.method != Method::Post {
                return Ok(None);
            }
            let Some(body) = request.body.as_ref() else { return Ok(None) };
            let Some(user_name) = body.get("userName").and_then(Value::as_str) else {
                return Ok(None);
            };
            let found_it = |resource: Value| {
                tracing::warn!("{request} got no usable answer, but the user exists: not sending it again");
                ScimResponse { status: 200, body: Some(resource), etag: None }
            };
            // Through the listing, so a service without filters is matched here, as every lookup is.
            let filter = EqFilter::new("userName", user_name);
            let found = self.list("/Users", Some(&filter), &[], Some).await?;
            if let Some(resource) = found.into_iter().find(|r| id_of(r).is_some()) {
                return Ok(Some(found_it(resource)));
            }
            // Then each other match key the POST carries (a service that rewrote the login):
            // a user found so counts only when it carries this POST's marker, so another person
            // with that address is never taken for it (without a marker, only `userName` counts);
            // a key the service cannot filter on is skipped.
            let Some(marker) = body.get("externalId").and_then(Value::as_str) else { return Ok(None) };
            for key in &self.match_keys {
                let Some(value) = key.get(body).and_then(Value::as_str) else { continue };
                let filter = EqFilter::new(&key.filter_attribute(), value);
                let Ok(found) = self.list("/Users", Some(&filter), &[], Some).await else { continue };
                let same = |r: &Value| {
                    id_of(r).is_some()
                        && key.get(r).and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(value))
                        && r.get("externalId").and_then(Value::as_str) == Some(marker)
                };
                if let Some(resource) = found.into_iter().find(same) {
                    return Ok(Some(found_it(resource)));
                }
            }
            Ok(None)
        })
    }

    /// One page of the listing at `path`: `count` resources from `start_index`, matching `filter`,
    /// without `excluded` attributes.
    async fn page(
        &self,
        path: &str,
        start_index: usize,
        count: usize,
        filter: Option<&dyn ListFilter>,
        excluded: &[String],
    ) -> Result<ListResponse<Value>, TargetError> {
        let mut query = vec![("startIndex", start_index.to_string()), ("count", count.to_string())];
        if let Some(filter) = filter {
            query.push(("filter", filter.to_string()));
        }
        if !excluded.is_empty() {
            query.push(("excludedAttributes", excluded.join(",")));
        }
        let request = ScimRequest::new(Method::Get, path);
        page_of(&request, self.execute(&request, &query, false).await?)
    }

    /// Every resource at `path` (matching `filter`), page by page, each turned by `keep` into
    /// what the caller holds as its page arrives. The first page tells `totalResults`; the next
    /// are fetched up to `concurrency` at a time, within the rate limit, and taken in order
    /// (`listing.rs`, which also says what a listing does not trust).
    async fn list<T>(
        &self,
        path: &str,
        filter: Option<&dyn ListFilter>,
        excluded: &[String],
        keep: impl Fn(Value) -> Option<T>,
    ) -> Result<Vec<T>, TargetError> {
        let capabilities = self.capabilities().await;
        let page_size = self.profile.page_size_for(capabilities.max_results);
        // A service that does not filter gets no filter: everything is listed and matched here.
        let (filter, local) = if capabilities.filter { (filter, None) } else { (None, filter) };
        let selected = |resource: &Value| local.is_none_or(|f| f.matches_resource(resource));
        let fetch = |start_index: usize| self.page(path, start_index, page_size, filter, excluded);
        let progress = |received: usize| {
            self.progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner).inc(received as u64);
        };
        let mut walk = Walk::new(path, page_size, self.limits.max_resources);
        let first = fetch(1).await?;
        progress(first.resources.len());
        if walk.take(1, first, selected, &keep)? == Taken::Complete {
            return Ok(walk.into_resources());
        }
        let mut fetched = 1;
        while fetched < MAX_PAGES {
            // A sliding window: `concurrency` pages in flight, taken in order as they come.
            let starts = walk.remaining_starts();
            let mut pages = futures_util::stream::iter(
                starts.into_iter().map(|start| async move { fetch(start).await.map(|page| (start, page)) }),
            )
            .buffered(self.concurrency);
            while let Some(answer) = pages.next().await {
                let (start, page) = answer?;
                fetched += 1;
                progress(page.resources.len());
                match walk.take(start, page, selected, &keep)? {
                    Taken::Complete => return Ok(walk.into_resources()),
                    Taken::Full => {}
                    // The pages guessed after it start in the wrong place (those in flight are
                    // dropped): asked again from where it ended.
                    Taken::Short => break,
                }
            }
        }
        Err(TargetError::Listing { path: path.to_owned(), detail: format!("it did not end after {MAX_PAGES} pages") })
    }

    async fn users(&self) -> Result<Vec<CurrentUser>, TargetError> {
        let mut users = self.users_where(None).await?;
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users.dedup_by(|a, b| a.id == b.id);
        Ok(users)
    }

    /// How many users the service holds: one `count=0` request per listing pass (RFC 7644
    /// §3.4.2.4: only `totalResults`; the profile may ask for a page of one instead).
    pub async fn user_count(&self) -> Result<usize, TargetError> {
        let excluded = &self.profile.excluded_attributes;
        let count = |filter: Option<EqFilter>| async move {
            let filter = filter.as_ref().map(|f| f as &dyn ListFilter);
            Ok::<_, TargetError>(
                self.page("/Users", 1, self.profile.count_probe, filter, excluded).await?.total_results,
            )
        };
        if self.profile.list_inactive_separately {
            let (active, inactive) =
                futures_util::future::try_join(count(None), count(Some(EqFilter::new("active", false)))).await?;
            Ok(active + inactive)
        } else {
            count(None).await
        }
    }

    /// The users modified after `after` (the service's clock, RFC 3339), kept as a listing keeps
    /// them; `None` when the service does not filter on `meta.lastModified` (it refuses the
    /// filter, or filters nothing at all).
    pub async fn users_modified_after(&self, after: &str) -> Result<Option<Vec<CurrentUser>>, TargetError> {
        if !self.capabilities().await.filter || !self.profile.filters_modified {
            return Ok(None);
        }
        match self.users_where(Some(&ModifiedAfter(after.to_owned()))).await {
            Ok(users) => Ok(Some(users)),
            Err(TargetError::Status { status: 400 | 501, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The newest `meta.lastModified` of the users listed or written so far (the service's clock).
    pub fn newest_modified(&self) -> Option<jiff::Timestamp> {
        *self.newest_modified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a user resource's `meta.lastModified`.
    fn saw(&self, resource: &Value) {
        let modified = resource.pointer("/meta/lastModified").and_then(Value::as_str);
        if let Some(modified) = modified.and_then(|m| m.parse::<jiff::Timestamp>().ok()) {
            let mut newest = self.newest_modified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *newest = (*newest).max(Some(modified));
        }
    }

    /// The users (matching `filter`), in every listing pass the profile needs.
    async fn users_where(&self, filter: Option<&dyn ListFilter>) -> Result<Vec<CurrentUser>, TargetError> {
        let excluded = &self.profile.excluded_attributes;
        let keep = |resource: Value| {
            self.saw(&resource);
            match &self.kept {
                Some(managed) => CurrentUser::keeping(&resource, managed),
                None => CurrentUser::from_resource(resource),
            }
        };
        if self.profile.list_inactive_separately && filter.is_none() {
            // Genesys lists only active users unless asked for the others: both passes at once.
            let inactive = EqFilter::new("active", false);
            let (mut active, inactive) = futures_util::future::try_join(
                self.list("/Users", None, excluded, keep),
                self.list("/Users", Some(&inactive), excluded, keep),
            )
            .await?;
            active.extend(inactive);
            Ok(active)
        } else {
            self.list("/Users", filter, excluded, keep).await
        }
    }

    async fn group(&self, reference: &TargetGroupRef) -> Result<CurrentGroup, TargetError> {
        let resource = match reference {
            TargetGroupRef::Id(id) => self.fetch(&format!("/Groups/{id}")).await?,
            TargetGroupRef::DisplayName(name) => {
                let mut found =
                    self.list("/Groups", Some(&EqFilter::new("displayName", name.as_str())), &[], Some).await?;
                if found.len() > 1 {
                    return Err(TargetError::GroupAmbiguous { group: reference.clone(), count: found.len() });
                }
                found.pop()
            }
        };
        resource
            .as_ref()
            .and_then(CurrentGroup::from_resource)
            .ok_or_else(|| TargetError::GroupNotFound { group: reference.clone() })
    }
}

fn parse_success(label: &str, status: u16, headers: &HeaderMap, bytes: &[u8]) -> Result<ScimResponse, TargetError> {
    let etag = headers.get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice::<Value>(bytes)
                .map_err(|e| TargetError::Protocol { request: label.to_owned(), detail: e.to_string() })?,
        )
    };
    Ok(ScimResponse { status, body, etag })
}

impl TargetReader for ScimClient {
    async fn current_state(
        &self,
        groups: &[TargetGroupRef],
        may_be_missing: &[TargetGroupRef],
    ) -> Result<CurrentState, TargetError> {
        Ok(CurrentState { users: self.users().await?, groups: self.groups(groups, may_be_missing).await? })
    }

    async fn groups(
        &self,
        groups: &[TargetGroupRef],
        may_be_missing: &[TargetGroupRef],
    ) -> Result<BTreeMap<TargetGroupRef, CurrentGroup>, TargetError> {
        let mut found = BTreeMap::new();
        for reference in groups {
            if !found.contains_key(reference) {
                match self.group(reference).await {
                    Ok(group) => {
                        found.insert(reference.clone(), group);
                    }
                    Err(TargetError::GroupNotFound { .. }) if may_be_missing.contains(reference) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(found)
    }

    async fn fetch(&self, path: &str) -> Result<Option<Value>, TargetError> {
        match self.execute(&ScimRequest::new(Method::Get, path), &[], false).await {
            Ok(response) => Ok(response.body),
            Err(TargetError::Status { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn find(&self, path: &str, attribute: &str, value: &str) -> Result<Vec<Value>, TargetError> {
        self.list(path, Some(&EqFilter::new(attribute, value)), &[], Some).await
    }
}

impl TargetWriter for ScimClient {
    async fn send(&self, request: &ScimRequest) -> Result<ScimResponse, TargetError> {
        let capabilities = self.capabilities().await;
        let response = if request.method == Method::Patch && !capabilities.patch {
            self.patch_as_put(request, capabilities.etag).await?
        } else {
            self.execute(request, &[], capabilities.etag).await?
        };
        if request.path.starts_with("/Users")
            && let Some(body) = &response.body
        {
            self.saw(body);
        }
        Ok(response)
    }

    fn keeps(&self) -> Option<&[ScimPath]> {
        self.kept.as_deref()
    }
}

impl ScimClient {
    /// For a service without PATCH: read the resource, apply the operations to it, and PUT it
    /// back whole, so attributes scimform does not manage are sent back exactly as read.
    async fn patch_as_put(&self, request: &ScimRequest, etag: bool) -> Result<ScimResponse, TargetError> {
        let label = request.to_string();
        let protocol = |detail: String| TargetError::Protocol { request: label.clone(), detail };
        let current = self.execute(&ScimRequest::new(Method::Get, request.path.clone()), &[], false).await?;
        let mut resource = current.body.ok_or_else(|| protocol("the resource came back empty".into()))?;
        let version = crate::scim::resource::version_of(&resource).or(current.etag);
        let patch: crate::scim::PatchRequest = request
            .body
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| protocol(e.to_string()))?
            .ok_or_else(|| protocol("a PATCH without a body".into()))?;
        for operation in &patch.operations {
            crate::scim::patch::apply(&mut resource, operation).map_err(|e| protocol(e.to_string()))?;
        }
        // The plan's version if it has one: a change made since the plan must still be refused.
        let put = ScimRequest::new(Method::Put, request.path.clone())
            .with_body(resource)
            .with_if_match(request.if_match.clone().or(version));
        self.execute(&put, &[], etag).await
    }
}
