//! The production SCIM client against wiremock, one behaviour per test: OAuth2, 401, 429 and
//! Retry-After, 5xx, POST timeouts, stale ETags, Genesys listing, and pacing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use scimform::http::retry::Backoff;
use scimform::manifest::model::{ClientAuth, Profile, TargetAuth, TargetConfig, TargetGroupRef};
use scimform::scim::{Method, ScimPath, ScimRequest};
use scimform::secret::Secret;
use scimform::service::{ScimClient, TargetReader, TargetWriter};
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn config(server: &MockServer, auth: TargetAuth) -> TargetConfig {
    TargetConfig {
        profile: Profile::Generic,
        base_url: format!("{}/scim/v2", server.uri()),
        auth,
        concurrency: 1,
        requests_per_minute: None,
        ca_file: None,
        timeout_seconds: 5,
        max_attempts: 4,
        limits: scimform::manifest::model::ReadLimits::default(),
    }
}

fn bearer() -> TargetAuth {
    TargetAuth::BearerToken(Secret::new("static"))
}

fn oauth(server: &MockServer) -> TargetAuth {
    TargetAuth::OAuth2ClientCredentials {
        token_url: format!("{}/oauth/token", server.uri()),
        client_id: "cid".into(),
        client_secret: Secret::new("csecret"),
        scope: None,
        client_auth: ClientAuth::Basic,
    }
}

fn fast(client: ScimClient) -> ScimClient {
    client.with_backoff(Backoff { base: Duration::from_millis(20), cap: Duration::from_millis(200) })
}

fn list(users: &[Value]) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": users.len(),
           "startIndex": 1, "itemsPerPage": users.len(), "Resources": users})
}

/// A generic server: no ETags in its ServiceProviderConfig unless asked.
async fn server(etag: bool) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/ServiceProviderConfig"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"etag": {"supported": etag}, "filter": {"supported": true, "maxResults": 200}})),
        )
        .mount(&server)
        .await;
    server
}

fn token(value: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"access_token": value, "token_type": "Bearer", "expires_in": expires_in}))
}

fn patch(id: &str) -> ScimRequest {
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]});
    ScimRequest::new(Method::Patch, format!("/Users/{id}")).with_body(body).with_if_match(Some("\"42\"".into()))
}

async fn token_requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == "/oauth/token").count()
}

#[tokio::test]
async fn the_token_is_cached_and_refreshed_near_expiry() {
    let server = server(false).await;
    // HTTP Basic with the client id and secret, and the client-credentials grant in the form.
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("authorization", "Basic Y2lkOmNzZWNyZXQ="))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(token("t1", 1))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(header("authorization", "Bearer t1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(&[])))
        .mount(&server)
        .await;
    let client = ScimClient::new(&config(&server, oauth(&server)), &[]).unwrap();
    client.current_state(&[], &[]).await.unwrap();
    client.current_state(&[], &[]).await.unwrap();
    assert_eq!(token_requests(&server).await, 1, "one token for both reads");
    // A 1 s token is refreshed once half its life is gone.
    tokio::time::sleep(Duration::from_millis(600)).await;
    client.current_state(&[], &[]).await.unwrap();
    assert_eq!(token_requests(&server).await, 2);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries_with_the_new_one() {
    let server = server(false).await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(token("old", 3600))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path("/oauth/token")).respond_with(token("new", 3600)).mount(&server).await;
    Mock::given(method("PATCH"))
        .and(header("authorization", "Bearer old"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(header("authorization", "Bearer new"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let client = ScimClient::new(&config(&server, oauth(&server)), &[]).unwrap();
    let response = client.send(&patch("u1")).await.unwrap();
    assert_eq!(response.status, 204);
    assert_eq!(token_requests(&server).await, 2);
    assert_eq!(client.stats().token_refreshes, 1);
}

async fn throttled_then_ok(retry_after: Option<String>) -> (Duration, ScimClient, MockServer) {
    let server = server(false).await;
    let mut refusal = ResponseTemplate::new(429);
    if let Some(value) = retry_after {
        refusal = refusal.insert_header("Retry-After", value.as_str());
    }
    Mock::given(method("PATCH")).respond_with(refusal).up_to_n_times(1).with_priority(1).mount(&server).await;
    Mock::given(method("PATCH")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let client = fast(ScimClient::new(&config(&server, bearer()), &[]).unwrap());
    let started = Instant::now();
    client.send(&patch("u1")).await.unwrap();
    (started.elapsed(), client, server)
}

#[tokio::test]
async fn a_429_waits_for_retry_after_in_seconds() {
    let (elapsed, client, _server) = throttled_then_ok(Some("1".into())).await;
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    let stats = client.stats();
    assert_eq!((stats.retries, stats.throttled_waits), (1, 1));
}

#[tokio::test]
async fn a_429_waits_until_an_http_date() {
    let when = std::time::SystemTime::now() + Duration::from_secs(2);
    let (elapsed, _, _server) = throttled_then_ok(Some(httpdate::fmt_http_date(when))).await;
    // HTTP dates have whole seconds: at least one second is left of the two.
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off() {
    let (_, client, server) = throttled_then_ok(None).await;
    assert_eq!(client.stats().retries, 1);
    let patches = server.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "PATCH").count();
    assert_eq!(patches, 2);
}

#[tokio::test]
async fn a_503_is_retried() {
    let server = server(false).await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "u1"})))
        .mount(&server)
        .await;
    let client = fast(ScimClient::new(&config(&server, bearer()), &[]).unwrap());
    assert_eq!(client.send(&patch("u1")).await.unwrap().status, 200);
    assert_eq!(client.stats().retries, 1);
}

#[tokio::test]
async fn other_4xx_are_final_and_carry_the_scim_error() {
    let server = server(false).await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "409", "scimType": "uniqueness", "detail": "userName taken"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = fast(ScimClient::new(&config(&server, bearer()), &[]).unwrap());
    let error = client.send(&patch("u1")).await.unwrap_err();
    assert_eq!(error.to_string(), "PATCH /Users/u1 was refused with HTTP 409 (uniqueness): userName taken");
}

#[tokio::test]
async fn a_timed_out_post_is_looked_up_not_sent_twice() {
    let server = server(false).await;
    Mock::given(method("POST"))
        .and(path("/scim/v2/Users"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "late"})).set_delay(Duration::from_secs(3)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param("filter", r#"userName eq "ann@x.example""#))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(list(&[json!({"id": "u-ann", "userName": "ann@x.example"})])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut config = config(&server, bearer());
    config.timeout_seconds = 1;
    let client = fast(ScimClient::new(&config, &[]).unwrap());
    let create = ScimRequest::new(Method::Post, "/Users").with_body(json!({"userName": "ann@x.example"}));
    let response = client.send(&create).await.unwrap();
    assert_eq!(response.body.unwrap()["id"], "u-ann");
}

#[tokio::test]
async fn stale_versions_are_reported_as_stale_whether_400_invalid_vers_or_412() {
    let server = server(true).await;
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Users/genesys"))
        .and(header("if-match", "\"42\""))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "scimType": "invalidVers", "detail": "version mismatch"})))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Users/rfc"))
        .and(header("if-match", "\"42\""))
        .respond_with(ResponseTemplate::new(412))
        .mount(&server)
        .await;
    let client = ScimClient::new(&config(&server, bearer()), &[]).unwrap();
    for id in ["genesys", "rfc"] {
        let error = client.send(&patch(id)).await.unwrap_err();
        assert!(error.is_stale(), "{id}: {error}");
    }
}

#[tokio::test]
async fn if_match_is_sent_only_to_services_with_etags() {
    let server = server(false).await;
    Mock::given(method("PATCH")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let client = ScimClient::new(&config(&server, bearer()), &[]).unwrap();
    client.send(&patch("u1")).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    let sent = requests.iter().find(|r| r.method.as_str() == "PATCH").unwrap();
    assert!(!sent.headers.contains_key("if-match"));
    // Every write carries its idempotency key.
    assert_eq!(sent.headers.get("idempotency-key").unwrap().to_str().unwrap(), patch("u1").idempotency_key());
}

#[tokio::test]
async fn genesys_lists_active_then_inactive_users_in_pages_of_25_without_unmanaged_expensive_attributes() {
    let server = MockServer::start().await;
    genesys_refusals(&server).await;
    let excluded = "roles,urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingSkills,urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingLanguages";
    let active: Vec<Value> =
        (0..30).map(|i| json!({"id": format!("a{i}"), "userName": format!("a{i}@x"), "active": true})).collect();
    Mock::given(method("GET"))
        .and(path("/api/v2/scim/v2/Users"))
        .and(query_param("count", "25"))
        .and(query_param("startIndex", "1"))
        .and(query_param("excludedAttributes", excluded))
        .and(query_param_is_missing("filter"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"totalResults": 30, "Resources": active[..25]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/scim/v2/Users"))
        .and(query_param("count", "25"))
        .and(query_param("startIndex", "26"))
        .and(query_param_is_missing("filter"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"totalResults": 30, "Resources": active[25..]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v2/scim/v2/Users"))
        .and(query_param("filter", "active eq false"))
        .and(query_param("count", "25"))
        .and(query_param("excludedAttributes", excluded))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(list(&[json!({"id": "gone", "userName": "gone@x", "active": false})])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut config = config(&server, bearer());
    config.profile = Profile::Genesys;
    config.base_url = format!("{}/api/v2/scim/v2", server.uri());
    let managed = [ScimPath::parse("userName").unwrap(), ScimPath::parse("externalId").unwrap()];
    let state = ScimClient::new(&config, &managed).unwrap().current_state(&[], &[]).await.unwrap();
    assert_eq!(state.users.len(), 31);
    assert!(state.users.iter().any(|u| u.id == "gone" && !u.active()));
}

#[tokio::test]
async fn genesys_rate_limit_headers_slow_the_next_request() {
    let server = server(false).await;
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(204)
                .insert_header("inin-ratelimit-count", "299")
                .insert_header("inin-ratelimit-allowed", "300")
                .insert_header("inin-ratelimit-reset", "1"),
        )
        .mount(&server)
        .await;
    let client = ScimClient::new(&config(&server, bearer()), &[]).unwrap();
    client.send(&patch("u1")).await.unwrap();
    let started = Instant::now();
    client.send(&patch("u2")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950), "{:?}", started.elapsed());
    assert_eq!(client.stats().throttled_waits, 1);
}

/// Genesys's refusals (`genesys_rules`: pages, `excludedAttributes`, filters), ahead of the
/// test's own mocks: a Genesys fake may be stricter than Genesys, never more lenient.
async fn genesys_refusals(server: &MockServer) {
    struct Refused;
    fn refusal(request: &Request) -> Option<scimform::service::genesys_rules::Refusal> {
        let query: std::collections::BTreeMap<String, String> = request.url.query_pairs().into_owned().collect();
        let users = request.url.path().ends_with("/Users");
        let count = query.get("count").and_then(|c| c.parse().ok());
        scimform::service::genesys_rules::refuse_list(
            users,
            count,
            query.get("excludedAttributes").map(String::as_str),
            query.get("filter").map(String::as_str),
        )
    }
    impl wiremock::Match for Refused {
        fn matches(&self, request: &Request) -> bool {
            request.method.as_str() == "GET" && refusal(request).is_some()
        }
    }
    impl Respond for Refused {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let (status, scim_type, detail) = refusal(request).unwrap_or_default();
            ResponseTemplate::new(status)
                .set_body_json(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": status.to_string(), "scimType": scim_type, "detail": detail}))
        }
    }
    Mock::given(Refused).respond_with(Refused).with_priority(1).mount(server).await;
}

/// Answers 429 (Retry-After: 1) to any write beyond `per_second` in the last second.
struct RateLimitedServer {
    per_second: usize,
    seen: Mutex<Vec<Instant>>,
}

impl Respond for RateLimitedServer {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap();
        seen.retain(|t| now.duration_since(*t) < Duration::from_secs(1));
        if seen.len() >= self.per_second {
            return ResponseTemplate::new(429).insert_header("Retry-After", "1");
        }
        seen.push(now);
        ResponseTemplate::new(204)
    }
}

async fn fifty_patches(client: &ScimClient) -> Duration {
    let started = Instant::now();
    let requests: Vec<ScimRequest> = (0..50).map(|i| patch(&format!("u{i}"))).collect();
    let sends = requests.iter().map(|r| client.send(r));
    let results = futures_util::future::join_all(sends).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    started.elapsed()
}

#[tokio::test]
async fn pacing_keeps_to_requests_per_minute_and_survives_a_stricter_server() {
    // 600 a minute: 10 a second, evenly; the first goes at once, so 50 take at least 4.9 s.
    let server = server(false).await;
    Mock::given(method("PATCH")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let mut paced = config(&server, bearer());
    paced.requests_per_minute = Some(600);
    let client = ScimClient::new(&paced, &[]).unwrap();
    let elapsed = fifty_patches(&client).await;
    assert!(elapsed >= Duration::from_millis(4850), "{elapsed:?}");
    let patches = server.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "PATCH").count();
    assert_eq!(patches, 50);

    // A client allowed twice what the server takes is refused, waits, and still lands every write.
    let strict = server_with_limit(10).await;
    let mut eager = config(&strict, bearer());
    eager.requests_per_minute = Some(1200);
    eager.max_attempts = 10;
    let client = fast(ScimClient::new(&eager, &[]).unwrap());
    fifty_patches(&client).await;
    let stats = client.stats();
    assert_eq!(stats.by_status.get(&(Method::Patch, 204)), Some(&50));
    assert!(stats.throttled_waits > 0 && stats.retries > 0, "{stats:?}");
}

async fn server_with_limit(per_second: usize) -> MockServer {
    let server = server(false).await;
    Mock::given(method("PATCH"))
        .respond_with(RateLimitedServer { per_second, seen: Mutex::new(Vec::new()) })
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn groups_by_display_name_use_a_filter() {
    let server = server(false).await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .and(query_param("filter", r#"displayName eq "Support \"A\"""#))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(list(&[
                json!({"id": "g1", "displayName": "Support \"A\"", "members": [{"value": "u1"}]}),
            ])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(&[])))
        .mount(&server)
        .await;
    let client = ScimClient::new(&config(&server, bearer()), &[]).unwrap();
    let state = client.current_state(&[TargetGroupRef::DisplayName("Support \"A\"".into())], &[]).await.unwrap();
    assert_eq!(state.groups.values().next().unwrap().members.len(), 1);
}

/// A POST whose answer was lost is looked for before it is sent again: by `userName`, then by
/// each other match key the POST carries, where a user found counts only with the POST's
/// marker (a service that rewrote the login has the user under another `userName`).
#[tokio::test]
async fn a_lost_post_is_found_by_another_match_key_with_its_marker() {
    let server = server(false).await;
    Mock::given(method("POST"))
        .and(path("/scim/v2/Users"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param("filter", "userName eq \"ann@corp.example\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(&[])))
        .mount(&server)
        .await;
    let stored = |marker: &str| {
        json!({"id": "u9", "userName": "ANN_1", "externalId": marker,
               "emails": [{"type": "home", "value": "x@y"}, {"type": "work", "value": "Ann@Work.example"}]})
    };
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param("filter", "emails.value eq \"ann@work.example\""))
        .respond_with(ResponseTemplate::new(200).set_body_json(list(&[stored("hr-1")])))
        .mount(&server)
        .await;
    let keys = [ScimPath::attribute("userName"), ScimPath::parse("emails[type eq \"work\"].value").unwrap()];
    let client = fast(ScimClient::new(&config(&server, bearer()), &[]).unwrap()).matching(&keys);
    let create = |marker: &str| ScimRequest {
        method: Method::Post,
        path: "/Users".into(),
        body: Some(json!({"userName": "ann@corp.example", "externalId": marker,
                          "emails": [{"type": "work", "value": "ann@work.example"}]})),
        if_match: None,
        idempotency_key: None,
    };
    let found = client.send(&create("hr-1")).await.unwrap();
    assert_eq!(found.body.unwrap()["id"], "u9", "found, not created twice");
    let posts = server.received_requests().await.unwrap().iter().filter(|r| r.method.as_str() == "POST").count();
    assert_eq!(posts, 1);

    // Someone else's user with that address (another marker) is not taken for it.
    let error = client.send(&create("hr-2")).await.unwrap_err();
    assert!(error.to_string().contains("503"), "{error}");
}
