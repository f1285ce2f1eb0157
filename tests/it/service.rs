use scimform::manifest::model::{Profile, TargetAuth, TargetConfig, TargetGroupRef};
use scimform::scim::{Method, PatchOperation, PatchRequest, ScimPath, ScimRequest};
use scimform::secret::Secret;
use scimform::service::memory::{MemoryServer, MemoryStore};
use scimform::service::{ScimClient, TargetError, TargetReader, TargetWriter};
use serde_json::json;

fn client(server: &MemoryServer) -> ScimClient {
    client_with_token(server, "t")
}

fn client_with_token(server: &MemoryServer, token: &str) -> ScimClient {
    client_with(server, token, 1)
}

fn client_with(server: &MemoryServer, token: &str, concurrency: usize) -> ScimClient {
    ScimClient::new(
        &TargetConfig {
            profile: Profile::Generic,
            base_url: server.base_url().to_owned(),
            auth: TargetAuth::BearerToken(Secret::new(token)),
            concurrency,
            requests_per_minute: None,
            ca_file: None,
            timeout_seconds: 10,
            max_attempts: 3,
            limits: scimform::manifest::model::ReadLimits::default(),
        },
        &[],
    )
    .unwrap()
}

#[tokio::test]
async fn lists_every_page() {
    let mut store = MemoryStore::new(Some("t"));
    for i in 0..450 {
        store.insert_user(json!({"userName": format!("u{i}@x.example")}));
    }
    let server = MemoryServer::start(store).await.unwrap();
    let state = client(&server).current_state(&[], &[]).await.unwrap();
    assert_eq!(state.users.len(), 450);
    let mut names: Vec<String> = state.users.iter().map(|u| u.user_name().unwrap().to_owned()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 450, "no user is read twice");
}

/// After the first page, the pages of a listing are asked for `concurrency` at a time (the
/// double counts the requests it holds at once) and taken in order: every user once.
#[tokio::test]
async fn the_pages_after_the_first_are_read_concurrency_at_a_time() {
    let mut store = MemoryStore::new(Some("t")).with_latency(std::time::Duration::from_millis(150));
    for i in 0..1_050 {
        store.insert_user(json!({"userName": format!("u{i:04}@x.example")}));
    }
    let server = MemoryServer::start(store).await.unwrap();
    let users = client_with(&server, "t", 4).current_state(&[], &[]).await.unwrap().users;
    let mut names: Vec<&str> = users.iter().map(|u| u.user_name().unwrap()).collect();
    names.dedup();
    assert_eq!(names.len(), 1_050, "every user once");
    assert_eq!(server.max_in_flight(), 4, "the 5 pages after the first (200 a page), 4 at a time");

    let one_at_a_time = MemoryServer::start({
        let mut store = MemoryStore::new(Some("t")).with_latency(std::time::Duration::from_millis(5));
        for i in 0..450 {
            store.insert_user(json!({"userName": format!("u{i}@x.example")}));
        }
        store
    })
    .await
    .unwrap();
    assert_eq!(client_with(&one_at_a_time, "t", 1).current_state(&[], &[]).await.unwrap().users.len(), 450);
    assert_eq!(one_at_a_time.max_in_flight(), 1);
}

/// The double's rate limit: the requests over it in a minute are answered 429 with
/// `Retry-After`, as Genesys answers them.
#[tokio::test]
async fn the_double_answers_429_with_retry_after_over_its_rate_limit() {
    let server = MemoryServer::start(MemoryStore::new(Some("t")).rate_limited(3)).await.unwrap();
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = http.get(format!("{}/Users", server.base_url())).bearer_auth("t").send().await.unwrap();
        if response.status() == 429 {
            let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn a_resource_changed_since_it_was_read_is_reported_stale() {
    let mut store = MemoryStore::new(Some("t"));
    let id = store.insert_user(json!({"userName": "ann@x.example", "title": "Agent"}));
    let server = MemoryServer::start(store).await.unwrap();
    let client = client(&server);
    let state = client.current_state(&[], &[]).await.unwrap();
    let read_version = state.users[0].version.clone();
    assert!(read_version.is_some());
    server.edit_user(&id, |u| u["title"] = json!("Edited by hand"));
    let patch = PatchRequest::new(vec![PatchOperation::replace(&ScimPath::parse("title").unwrap(), json!("Lead"))]);
    let request = ScimRequest::new(Method::Patch, format!("/Users/{id}"))
        .with_body(serde_json::to_value(patch).unwrap())
        .with_if_match(read_version);
    let error = client.send(&request).await.unwrap_err();
    assert!(error.is_stale(), "{error}");
    assert_eq!(server.user("ann@x.example").unwrap()["title"], "Edited by hand");
}

#[tokio::test]
async fn adding_a_filtered_value_creates_the_element() {
    let mut store = MemoryStore::new(Some("t"));
    let id = store.insert_user(json!({"userName": "ann@x.example", "emails": [{"type": "other", "value": "o@x"}]}));
    let server = MemoryServer::start(store).await.unwrap();
    let path = ScimPath::parse(r#"emails[type eq "work"].value"#).unwrap();
    let send = |op: PatchOperation| {
        let request = ScimRequest::new(Method::Patch, format!("/Users/{id}"))
            .with_body(serde_json::to_value(PatchRequest::new(vec![op])).unwrap());
        let client = client(&server);
        async move { client.send(&request).await }
    };
    // RFC 7644: `replace` through a filter that matches nothing is `noTarget`...
    let error = send(PatchOperation::replace(&path, json!("w@x"))).await.unwrap_err();
    assert!(
        matches!(&error, TargetError::Status { status: 400, body: Some(b), .. } if b.scim_type.as_deref() == Some("noTarget")),
        "{error}"
    );
    // ...so a new element is added to the parent, which the planner does.
    send(PatchOperation::add(&path, json!("w@x"))).await.unwrap();
    assert_eq!(
        server.user("ann@x.example").unwrap()["emails"],
        json!([{"type": "other", "value": "o@x"}, {"type": "work", "value": "w@x"}])
    );
}

#[tokio::test]
async fn paired_groups_are_found_by_id_or_display_name() {
    let mut store = MemoryStore::new(Some("t"));
    let ann = store.insert_user(json!({"userName": "ann@x.example"}));
    let sales = store.insert_group("Sales", &[&ann]);
    store.insert_group("Twice", &[]);
    store.insert_group("twice", &[]);
    let server = MemoryServer::start(store).await.unwrap();
    let client = client(&server);
    let refs = [TargetGroupRef::Id(sales.clone()), TargetGroupRef::DisplayName("sales".into())];
    let state = client.current_state(&refs, &[]).await.unwrap();
    assert_eq!(state.groups.len(), 2);
    assert!(state.groups.values().all(|g| g.id == sales && g.members.contains(&ann)));
    let missing = client.current_state(&[TargetGroupRef::Id("nope".into())], &[]).await.unwrap_err();
    assert_eq!(missing.to_string(), "target group id `nope` was not found");
    let ambiguous = client.current_state(&[TargetGroupRef::DisplayName("Twice".into())], &[]).await.unwrap_err();
    assert_eq!(ambiguous.to_string(), "target group displayName `Twice` matches 2 groups");
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_the_scim_error() {
    let server = MemoryServer::start(MemoryStore::new(Some("right"))).await.unwrap();
    let error = client_with_token(&server, "wrong").current_state(&[], &[]).await.unwrap_err();
    assert!(
        error.to_string().starts_with("GET /Users was refused with HTTP 401: missing or wrong bearer token"),
        "{error}"
    );
}

#[tokio::test]
async fn a_service_without_patch_gets_the_whole_resource_back_by_put() {
    let mut store = MemoryStore::new(Some("t")).without_patch();
    let id = store.insert_user(json!({"userName": "ann@x.example", "title": "Agent", "nickName": "unmanaged", "emails": [{"type": "home", "value": "h@x"}]}));
    let server = MemoryServer::start(store).await.unwrap();
    let client = client(&server);
    let version = client.current_state(&[], &[]).await.unwrap().users[0].version.clone();
    let operations = vec![
        PatchOperation::replace(&ScimPath::parse("title").unwrap(), json!("Lead")),
        PatchOperation::add(&ScimPath::parse(r#"emails[type eq "work"].value"#).unwrap(), json!("w@x")),
    ];
    let request = ScimRequest::new(Method::Patch, format!("/Users/{id}"))
        .with_body(serde_json::to_value(PatchRequest::new(operations)).unwrap())
        .with_if_match(version);
    client.send(&request).await.unwrap();
    let user = server.user("ann@x.example").unwrap();
    assert_eq!(user["title"], "Lead");
    assert_eq!(user["nickName"], "unmanaged");
    assert_eq!(user["emails"], json!([{"type": "home", "value": "h@x"}, {"type": "work", "value": "w@x"}]));
    assert_eq!(server.writes(), 1, "one PUT, no PATCH");
    assert_eq!(client.stats().by_status.get(&(Method::Put, 200)), Some(&1));
}

/// The target's `ca_file` is used, so a missing or empty one is an error, not silently ignored.
#[test]
fn the_target_ca_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    for (ca_file, detail) in [(dir.path().join("missing.pem"), "No such file"), (empty, "it holds no PEM certificate")]
    {
        let config = TargetConfig {
            profile: Profile::Generic,
            base_url: "https://scim.example/v2".into(),
            auth: TargetAuth::BearerToken(Secret::new("t")),
            concurrency: 1,
            requests_per_minute: None,
            ca_file: Some(ca_file.clone()),
            timeout_seconds: 10,
            max_attempts: 3,
            limits: scimform::manifest::model::ReadLimits::default(),
        };
        let error = ScimClient::new(&config, &[]).unwrap_err().to_string();
        assert!(error.starts_with(&format!("cannot use the target's `ca_file` `{}`", ca_file.display())), "{error}");
        assert!(error.contains(detail), "{error}");
    }
}
