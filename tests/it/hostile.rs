//! A SCIM service that misbehaves, against the production client: listings that never advance,
//! repeat themselves, never end, end short, or answer 100 MB. Each is a clear error within
//! seconds, with bounded memory, and nothing is planned on what was read.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use scimform::manifest::model::{Profile, ReadLimits, TargetAuth, TargetConfig};
use scimform::secret::Secret;
use scimform::service::{ScimClient, TargetError, TargetReader};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{run_async, workspace};

fn config(server: &MockServer) -> TargetConfig {
    TargetConfig {
        profile: Profile::Generic,
        base_url: format!("{}/scim/v2", server.uri()),
        auth: TargetAuth::BearerToken(Secret::new("t")),
        concurrency: 1,
        requests_per_minute: None,
        ca_file: None,
        timeout_seconds: 30,
        max_attempts: 2,
        limits: ReadLimits::default(),
    }
}

fn user(i: usize) -> Value {
    json!({"id": format!("u{i}"), "userName": format!("user{i}@x.example"), "active": true})
}

fn page(users: &[Value], total: usize, start_index: usize) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total, "startIndex": start_index, "itemsPerPage": users.len(), "Resources": users}))
}

fn start_index(request: &Request) -> usize {
    request.url.query_pairs().find(|(k, _)| k == "startIndex").and_then(|(_, v)| v.parse().ok()).unwrap_or(1)
}

/// A service whose `/Users` pages come from `pages(startIndex, call)`; ServiceProviderConfig
/// says 100 a page.
async fn service(pages: impl Fn(usize, usize) -> ResponseTemplate + Send + Sync + 'static) -> MockServer {
    struct Pages<F>(F, AtomicUsize);
    impl<F: Fn(usize, usize) -> ResponseTemplate + Send + Sync> Respond for Pages<F> {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            (self.0)(start_index(request), self.1.fetch_add(1, Ordering::SeqCst))
        }
    }
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/ServiceProviderConfig"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"filter": {"supported": true, "maxResults": 100}})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .respond_with(Pages(pages, AtomicUsize::new(0)))
        .mount(&server)
        .await;
    server
}

/// Reads the users; returns the error and how long it took.
async fn listing_error(server: &MockServer) -> (String, Duration) {
    let started = Instant::now();
    let client = ScimClient::new(&config(server), &[]).unwrap();
    let error = client.current_state(&[], &[]).await.expect_err("the listing must fail");
    assert!(matches!(error, TargetError::Listing { .. } | TargetError::TooLarge { .. }), "{error:?}");
    // The hint is data, said after the message.
    let hint = error.hint().map(|hint| format!("; {hint}")).unwrap_or_default();
    (format!("{error}{hint}"), started.elapsed())
}

#[tokio::test]
async fn a_service_that_ignores_start_index_is_stopped_at_the_second_page() {
    let server = service(|_, _| page(&(0..100).map(user).collect::<Vec<_>>(), 6_709 * 100, 1)).await;
    let (error, took) = listing_error(&server).await;
    assert!(error.contains("`u0` came again in the page at startIndex 101"), "{error}");
    assert!(error.contains("does it ignore `startIndex`?"), "{error}");
    assert!(error.contains("nothing is planned"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3, "ServiceProviderConfig and two pages");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_resource_listed_twice_is_an_error() {
    let server = service(|start, _| {
        let first = start - 1;
        // The second page overlaps the first by one user.
        let from = if first == 0 { 0 } else { first - 1 };
        page(&(from..from + 100).map(user).collect::<Vec<_>>(), 250, start)
    })
    .await;
    let (error, _) = listing_error(&server).await;
    assert!(error.contains("`u99` came again in the page at startIndex 101"), "{error}");
}

#[tokio::test]
async fn a_service_that_invents_users_page_after_page_is_stopped() {
    // Every page is new users, and totalResults grows with them: it would never end.
    let server =
        service(|start, _| page(&(start..start + 100).map(user).collect::<Vec<_>>(), start + 199, start)).await;
    let (error, took) = listing_error(&server).await;
    assert!(error.contains("keeps sending resources beyond the 200 its first page reported (400 read"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 5, "stopped a page past the reported total");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn more_than_max_resources_is_refused_before_it_is_read() {
    let server = service(|start, _| page(&(start..start + 100).map(user).collect::<Vec<_>>(), 50_000_000, start)).await;
    let (error, _) = listing_error(&server).await;
    assert!(error.contains("reports 50000000 resources, more than `target.max_resources` (1000000)"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2, "one page read, no more");
}

#[tokio::test]
async fn an_empty_page_before_the_total_is_reached_ends_the_listing_in_an_error() {
    let server = service(|start, _| {
        let users: Vec<Value> = if start == 1 { (0..100).map(user).collect() } else { Vec::new() };
        page(&users, 250, start)
    })
    .await;
    let (error, _) = listing_error(&server).await;
    assert!(error.contains("the page at startIndex 101 is empty after 100 of the 250 resources it reports"), "{error}");
}

/// A service that sends more than `count` asked for (RFC 7644 makes it a maximum; some send
/// everything at once) is read on, with a warning: the other bounds still hold.
#[tokio::test]
async fn a_page_larger_than_asked_for_is_read_with_a_warning() {
    let server = service(|start, _| page(&(0..150).map(user).collect::<Vec<_>>(), 150, start)).await;
    let client = ScimClient::new(&config(&server), &[]).unwrap();
    let state = client.current_state(&[], &[]).await.unwrap();
    assert_eq!(state.users.len(), 150);
}

/// A 100 MB answer is refused from its `Content-Length`, before it is read; one without a
/// length (chunked) is stopped at the limit.
#[tokio::test]
async fn a_100_mb_body_is_not_read_whole() {
    let body = vec![b' '; 100 * 1024 * 1024];
    let server =
        service(move |_, _| ResponseTemplate::new(200).set_body_raw(body.clone(), "application/scim+json")).await;
    let (error, took) = listing_error(&server).await;
    assert!(
        error.contains("answered more than 32 MiB; if that is expected, raise `target.max_response_mib`"),
        "{error}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// Through the command line: a listing that ends short stops `plan` with the reason, and no
/// plan is printed.
#[tokio::test]
async fn plan_stops_on_a_broken_listing() {
    let server = service(|start, _| {
        let users: Vec<Value> = if start == 1 { (0..100).map(user).collect() } else { Vec::new() };
        page(&users, 250, start)
    })
    .await;
    let manifest = format!(
        "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: {}/scim/v2\n  auth: {{ bearer_token: t }}\nusers:\n  source: hr\n  attributes:\n    userName: mail\n",
        server.uri()
    );
    let dir = workspace(&[("m.yaml", &manifest), ("people.yaml", "users:\n  - {id: '1', mail: user1@x.example}\n")]);
    let result = run_async(dir.path(), &["plan", "-f", "m.yaml", "--no-state"], &[]).await;
    assert_eq!(result.code, 1, "{}", result.all());
    assert!(
        result.stderr.contains("the listing of /Users cannot be trusted, so nothing is planned"),
        "{}",
        result.stderr
    );
    assert!(!result.stdout.contains("Plan:"), "{}", result.stdout);
}

mod lost_answers {
    //! Writes that landed but whose answers were lost (stored, then answered 503 by the
    //! embedded server's fault injection): never duplicated, and reported applied.

    use std::fmt::Write as _;

    use scimform::service::memory::{MemoryServer, MemoryStore};
    use serde_json::{Value, json};

    use crate::common::{run_async, workspace};

    fn manifest(base_url: &str, groups: &str) -> String {
        format!(
            "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: {base_url}\n  auth: {{ bearer_token: t }}\n  max_attempts: 3\nusers:\n  source: hr\n  external_id: \"hr-{{{{ id }}}}\"\n  attributes:\n    userName: mail\n{groups}"
        )
    }

    fn people(n: usize, group: &[usize]) -> String {
        let mut text = String::from("users:\n");
        for i in 1..=n {
            let _ = writeln!(text, "  - {{id: '{i}', mail: u{i}@x.example}}");
        }
        let members: Vec<String> = group.iter().map(|i| format!("'{i}'")).collect();
        let _ = writeln!(text, "groups:\n  - {{id: team, members: [{}]}}", members.join(", "));
        text
    }

    fn report(dir: &std::path::Path) -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap()
    }

    /// Each POST is stored and answered 503; a service without `userName` uniqueness would keep
    /// a second copy of each re-sent POST. The client looks each user up before sending again.
    #[tokio::test]
    async fn a_post_stored_then_answered_503_is_one_user() {
        let store = MemoryStore::new(Some("t")).without_unique_names().losing_answers("POST", "/Users", 3);
        let server = MemoryServer::start(store).await.unwrap();
        let dir = workspace(&[("m.yaml", &manifest(server.base_url(), "")), ("people.yaml", &people(3, &[]))]);
        let apply = ["apply", "-f", "m.yaml", "--auto-approve", "--no-state", "--report", "r.json"];
        let result = run_async(dir.path(), &apply, &[]).await;
        assert_eq!(result.code, 0, "{}", result.all());
        assert_eq!(server.users().len(), 3, "{:?}", server.users());
        let posts = server.recorded_writes().iter().filter(|w| w.method == "POST").count();
        assert_eq!(posts, 3, "one POST each, never re-sent");
        let report = report(dir.path());
        assert_eq!(
            (report["result"].as_str(), report["applied"].as_u64(), report["failed"].as_u64()),
            (Some("applied"), Some(3), Some(0))
        );
        let again = run_async(dir.path(), &["plan", "-f", "m.yaml", "--no-state"], &[]).await;
        assert!(again.stdout.starts_with("No changes."), "{}", again.all());
    }

    /// A group PATCH stored and answered 503: the retry carries the old version and is refused
    /// as stale; the group is read again, needs nothing more, and the write is reported applied.
    #[tokio::test]
    async fn a_group_patch_stored_then_answered_503_is_applied() {
        let mut store = MemoryStore::new(Some("t")).losing_answers("PATCH", "/Groups/", 1);
        for i in 1..=3 {
            store.insert_user(
                json!({"userName": format!("u{i}@x.example"), "externalId": format!("hr-{i}"), "active": true}),
            );
        }
        store.insert_group("Team", &[]);
        let server = MemoryServer::start(store).await.unwrap();
        let groups = "groups:\n  - { name: Team, source: hr, from: { id: team }, to: { display_name: Team } }\n";
        let dir =
            workspace(&[("m.yaml", &manifest(server.base_url(), groups)), ("people.yaml", &people(3, &[1, 2, 3]))]);
        for state in [&["--no-state"][..], &[]] {
            let apply = [&["apply", "-f", "m.yaml", "--auto-approve", "--report", "r.json"][..], state].concat();
            let result = run_async(dir.path(), &apply, &[]).await;
            assert_eq!(result.code, 0, "{}", result.all());
            assert_eq!(server.group_members("Team").len(), 3);
            if state.is_empty() {
                // The second pass (with a state) had nothing left to do.
                assert!(result.stdout.starts_with("No changes."), "{}", result.all());
                continue;
            }
            assert!(result.stderr.contains("the write had landed"), "{}", result.stderr);
            assert!(!result.stderr.contains("failed"), "{}", result.stderr);
            let report = report(dir.path());
            assert_eq!(report["failed"], 0, "{report:#}");
            let operations = report["operations"].as_array().unwrap();
            assert_eq!(operations[0]["status"], 412, "{report:#}");
            assert_eq!(operations[0]["superseded"], true, "{report:#}");
            assert_eq!(operations.last().unwrap()["status"], 200, "{report:#}");
        }
        let again = run_async(dir.path(), &["plan", "-f", "m.yaml"], &[]).await;
        assert!(again.stdout.starts_with("No changes."), "{}", again.all());
    }
}

/// One user that cannot be read again after a stale write fails alone: the other writes are
/// applied and the report lists every request, with its status.
#[tokio::test]
async fn a_user_that_cannot_be_read_again_fails_alone() {
    let server = service(|_, _| {
        let user = |i: usize, title: &str| {
            json!({"id": format!("u{i}"), "userName": format!("user{i}@x.example"),
                                                   "externalId": format!("hr-{i}"), "title": title, "active": true,
                                                   "meta": {"version": "W/\"1\""}})
        };
        page(&[user(1, "Old"), user(2, "Old")], 2, 1)
    })
    .await;
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Users/u1"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/scim/v2/Users/u2"))
        .respond_with(ResponseTemplate::new(412).set_body_json(json!({"status": "412", "detail": "version mismatch"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users/u2"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"status": "500", "detail": "internal error"})))
        .mount(&server)
        .await;
    let manifest = format!(
        "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: {}/scim/v2\n  auth: {{ bearer_token: t }}\nusers:\n  source: hr\n  external_id: \"hr-{{{{ id }}}}\"\n  attributes:\n    userName: mail\n    title: title\n",
        server.uri()
    );
    let people =
        "users:\n  - {id: '1', mail: user1@x.example, title: New}\n  - {id: '2', mail: user2@x.example, title: New}\n";
    let dir = workspace(&[("m.yaml", &manifest), ("people.yaml", people)]);
    let result =
        run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve", "--no-state", "--report", "r.json"], &[])
            .await;
    assert_eq!(result.code, 1, "{}", result.all());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["result"], "failed", "{report:#}");
    assert_eq!(report["applied"], 1, "{report:#}");
    let operations: Vec<(String, u64)> = report["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["request"].as_str().unwrap().to_owned(), o["status"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(
        operations,
        [("PATCH /Users/u1".to_owned(), 204), ("PATCH /Users/u2".to_owned(), 412), ("GET /Users/u2".to_owned(), 500)]
    );
    assert!(result.stderr.contains("cannot read it again after a stale write"), "{}", result.stderr);
}

mod messages {
    //! Messages a person can act on: what failed, where, and what to check; no Rust debug
    //! output; the plan alone on stdout; a closed pipe ends quietly.

    use std::io::Read;
    use std::process::{Command, Stdio};

    use scimform::service::memory::{MemoryServer, MemoryStore};
    use wiremock::MockServer;

    use crate::common::{run_async, workspace};

    fn manifest(base_url: &str) -> String {
        format!(
            "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: {base_url}\n  auth: {{ bearer_token: t }}\n  max_attempts: 1\nusers:\n  source: hr\n  attributes:\n    userName: mail\n"
        )
    }

    const PEOPLE: &str = "users:\n  - {id: '1', mail: a@x.example}\n";

    fn no_debug_output(text: &str) {
        for debug in ["Transport {", "reqwest::", "Err(", "Some(", "Status {"] {
            assert!(!text.contains(debug), "`{debug}` in: {text}");
        }
    }

    #[tokio::test]
    async fn a_target_nobody_listens_on_says_refused_with_the_url_and_a_hint() {
        let dir = workspace(&[("m.yaml", &manifest("http://127.0.0.1:9/scim/v2")), ("people.yaml", PEOPLE)]);
        let result = run_async(dir.path(), &["plan", "-f", "m.yaml", "--no-state"], &[]).await;
        assert_eq!(result.code, 1, "{}", result.all());
        assert!(
            result.stderr.contains("the connection was refused: nothing listens there (http://127.0.0.1:9/scim/v2/Users)\n  hint: check `target.base_url`"),
            "{}",
            result.stderr
        );
        no_debug_output(&result.all());
    }

    #[tokio::test]
    async fn a_base_url_that_is_not_the_scim_base_says_so() {
        let server = MockServer::start().await;
        let dir = workspace(&[("m.yaml", &manifest(&server.uri())), ("people.yaml", PEOPLE)]);
        let result = run_async(dir.path(), &["plan", "-f", "m.yaml", "--no-state"], &[]).await;
        assert_eq!(result.code, 1, "{}", result.all());
        assert!(
            result
                .stderr
                .contains("/ServiceProviderConfig answered 404: is `target.base_url` the service's SCIM base URL"),
            "{}",
            result.stderr
        );
        assert!(
            result.stderr.contains("GET /Users was refused with HTTP 404\n  hint: check `target.base_url`"),
            "{}",
            result.stderr
        );
        no_debug_output(&result.all());
    }

    /// Warnings go to stderr; stdout holds the plan alone. A group created counts as a create
    /// and shows no empty id.
    #[tokio::test]
    async fn the_plan_alone_on_stdout_and_a_new_group_is_a_create() {
        let server = MemoryServer::start(MemoryStore::new(Some("t"))).await.unwrap();
        let people = "users:\n  - {id: '1', mail: a@x.example}\n  - {id: '2', mail: b@x.example, disabled: true}\ngroups:\n  - {id: team, members: ['1', '9']}\n";
        let text = format!(
            "{}groups:\n  - {{ name: Team, source: hr, from: {{ id: team }}, to: {{ display_name: New Team }}, create: true }}\n",
            manifest(server.base_url())
        );
        let dir = workspace(&[("m.yaml", &text), ("people.yaml", people)]);
        let result = run_async(dir.path(), &["plan", "-f", "m.yaml", "--no-state"], &[]).await;
        assert_eq!(result.code, 0, "{}", result.all());
        assert!(!result.stdout.contains("Warning"), "{}", result.stdout);
        assert!(result.stderr.contains("Warning: "), "{}", result.stderr);
        assert!(result.stdout.contains("      # target group \"New Team\"\n"), "{}", result.stdout);
        assert!(!result.stdout.contains("(id )"), "{}", result.stdout);
        assert!(
            result
                .stdout
                .contains("Plan: 2 to create, 0 to update, 0 to adopt, 0 to disable, 0 to delete, 0 groups to change."),
            "{}",
            result.stdout
        );
    }

    /// `scimform plan | head`: the reader goes away; scimform ends quietly.
    #[tokio::test]
    async fn a_closed_pipe_ends_quietly() {
        let server = MemoryServer::start(MemoryStore::new(Some("t"))).await.unwrap();
        let dir = workspace(&[("m.yaml", &manifest(server.base_url())), ("people.yaml", PEOPLE)]);
        let path = dir.path().to_owned();
        let (code, stderr) = tokio::task::spawn_blocking(move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_scimform"))
                .current_dir(&path)
                .args(["plan", "-f", "m.yaml", "--no-state"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            drop(child.stdout.take());
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            (child.wait().unwrap().code(), stderr)
        })
        .await
        .unwrap();
        assert_eq!(code, Some(0), "{stderr}");
        assert!(!stderr.contains("Broken pipe"), "{stderr}");
        assert!(!stderr.contains("error"), "{stderr}");
    }
}

/// A service that answers 200 to a group PUT and keeps the old members (seen with a third SCIM
/// implementation): the run warns naming the group, and the state records what the service
/// holds, so the next scheduled run plans the members again instead of "No changes".
#[tokio::test]
async fn a_group_write_the_service_ignores_is_planned_again() {
    let server = service(|_, _| {
        let user = |i: usize| {
            json!({"id": format!("u{i}"), "userName": format!("user{i}@x.example"),
                                    "externalId": format!("hr-{i}"), "active": true})
        };
        page(&[user(1), user(2)], 2, 1)
    })
    .await;
    let group = json!({"id": "g1", "displayName": "Team", "members": []});
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups/g1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(group.clone()))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/scim/v2/Groups/g1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(group))
        .expect(1)
        .mount(&server)
        .await;
    let manifest = format!(
        "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: {}/scim/v2\n  auth: {{ bearer_token: t }}\nusers:\n  source: hr\n  external_id: \"hr-{{{{ id }}}}\"\n  attributes:\n    userName: mail\ngroups:\n  - {{ name: Team, source: hr, from: {{ id: team }}, to: {{ id: g1 }}, method: put }}\n",
        server.uri()
    );
    let people = "users:\n  - {id: '1', mail: user1@x.example}\n  - {id: '2', mail: user2@x.example}\ngroups:\n  - {id: team, members: ['1', '2']}\n";
    let dir = workspace(&[("m.yaml", &manifest), ("people.yaml", people)]);
    let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &[]).await;
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert!(
        applied.stderr.contains("Warning: group \"Team\": the service accepted the write but holds other members than were sent (2 missing, 0 not asked for)"),
        "{}",
        applied.stderr
    );
    let next = run_async(dir.path(), &["plan", "-f", "m.yaml"], &[]).await;
    assert!(next.stderr.contains("Planned against the state"), "{}", next.all());
    assert!(next.stdout.contains("+ member \"user1@x.example\""), "planned again: {}", next.all());
}

/// A service whose ServiceProviderConfig says `filter.supported: false` (and refuses a filter,
/// as it may): group lookups by `displayName` list the groups and match here.
#[tokio::test]
async fn display_name_lookups_without_filter_support_match_locally() {
    use scimform::manifest::model::TargetGroupRef;
    use wiremock::matchers::query_param_is_missing;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/ServiceProviderConfig"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"filter": {"supported": false}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .and(query_param_is_missing("filter"))
        .respond_with(page(
            &[
                json!({"id": "g1", "displayName": "Sales", "members": []}),
                json!({"id": "g2", "displayName": "Team", "members": [{"value": "u1"}]}),
            ],
            2,
            1,
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Groups"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"status": "400", "scimType": "invalidFilter", "detail": "filters are not supported"}),
        ))
        .mount(&server)
        .await;
    let client = ScimClient::new(&config(&server), &[]).unwrap();
    let team = TargetGroupRef::DisplayName("team".into());
    let groups = client.groups(std::slice::from_ref(&team), &[]).await.unwrap();
    assert_eq!(groups[&team].id, "g2");
    assert_eq!(groups[&team].members.len(), 1);
}

mod genesys {
    //! Genesys Cloud's own answers, from the embedded server's Genesys mode: a stale write in
    //! each of its three forms, and a membership write over the size limit.

    use std::fmt::Write as _;

    use scimform::service::genesys_rules::GenesysRules;
    use scimform::service::memory::{MemoryServer, MemoryStore};
    use serde_json::{Value, json};

    use crate::common::{run_async, workspace};

    fn manifest(base_url: &str, groups: &str) -> String {
        format!(
            "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  profile: genesys\n  base_url: {base_url}\n  auth: {{ bearer_token: t }}\nusers:\n  source: hr\n  external_id: \"hr-{{{{ id }}}}\"\n  attributes:\n    userName: mail\n    title: title\n{groups}"
        )
    }

    /// 400 `invalidVers`, 409 and 412 all mean "changed since it was read": each is reported
    /// stale, the user read again and planned again, and the write lands.
    #[tokio::test]
    async fn each_form_of_a_stale_version_is_read_again_and_planned_again() {
        for stale_status in [400, 409, 412] {
            let rules = GenesysRules { stale_status, ..GenesysRules::default() };
            let server = MemoryServer::start(MemoryStore::new(Some("t")).genesys(rules)).await.unwrap();
            let people = |title: &str| format!("users:\n  - {{id: '1', mail: a@x.example, title: {title}}}\n");
            let dir = workspace(&[("m.yaml", &manifest(server.base_url(), "")), ("people.yaml", &people("Agent"))]);
            let apply = ["apply", "-f", "m.yaml", "--auto-approve", "--report", "r.json"];
            assert_eq!(run_async(dir.path(), &apply, &[]).await.code, 0);
            // An edit by hand moves the version on; the state still holds the old one.
            let id = server.user("a@x.example").unwrap()["id"].as_str().unwrap().to_owned();
            server.edit_user(&id, |u| u["displayName"] = json!("Edited by hand"));
            std::fs::write(dir.path().join("people.yaml"), people("Lead")).unwrap();
            let result = run_async(dir.path(), &apply, &[]).await;
            assert_eq!(result.code, 0, "{stale_status}: {}", result.all());
            assert!(result.stderr.contains("read again and planned again"), "{stale_status}: {}", result.stderr);
            assert_eq!(server.user("a@x.example").unwrap()["title"], "Lead", "{stale_status}");
            let report: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
            assert_eq!(report["operations"][0]["status"], stale_status, "{report:#}");
            assert_eq!(report["failed"], 0, "{report:#}");
        }
    }

    /// A membership PATCH answered 413 is sent again as smaller requests until each fits; all
    /// members land, and the report lists the refused request as superseded.
    #[tokio::test]
    async fn a_413_on_a_membership_write_is_answered_by_smaller_requests() {
        let rules = GenesysRules { max_members_per_request: Some(2), ..GenesysRules::default() };
        let mut store = MemoryStore::new(Some("t")).genesys(rules);
        let mut people = String::from("users:\n");
        for i in 1..=5 {
            store.insert_user(json!({"userName": format!("u{i}@x.example"), "externalId": format!("hr-{i}"), "title": "Agent", "active": true}));
            let _ = writeln!(people, "  - {{id: '{i}', mail: u{i}@x.example, title: Agent}}");
        }
        people.push_str("groups:\n  - {id: team, members: ['1', '2', '3', '4', '5']}\n");
        store.insert_group("Team", &[]);
        let server = MemoryServer::start(store).await.unwrap();
        let groups = "groups:\n  - { name: Team, source: hr, from: { id: team }, to: { display_name: Team } }\n";
        let dir = workspace(&[("m.yaml", &manifest(server.base_url(), groups)), ("people.yaml", &people)]);
        let result = run_async(
            dir.path(),
            &["apply", "-f", "m.yaml", "--auto-approve", "--no-state", "--report", "r.json"],
            &[],
        )
        .await;
        assert_eq!(result.code, 0, "{}", result.all());
        assert_eq!(server.group_members("Team").len(), 5);
        let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
        let statuses: Vec<u64> =
            report["operations"].as_array().unwrap().iter().map(|o| o["status"].as_u64().unwrap()).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 413).count(),
            2,
            "5 members, then 3, then fitting parts: {report:#}"
        );
        assert_eq!(report["failed"], 0, "{report:#}");
        let again = run_async(dir.path(), &["plan", "-f", "m.yaml", "--no-state"], &[]).await;
        assert!(again.stdout.starts_with("No changes."), "{}", again.all());
    }
}

/// A create answered 409 whose user no lookup can find (Genesys keeps deleted users): the
/// report names the user and says what to do; the other user is created.
#[tokio::test]
async fn a_create_refused_as_existing_that_no_lookup_finds_says_what_to_do() {
    let server = service(|_, _| page(&[], 0, 1)).await;
    Mock::given(method("POST"))
        .and(path("/scim/v2/Users"))
        .and(wiremock::matchers::body_string_contains("gone@x.example"))
        .respond_with(
            ResponseTemplate::new(409)
                .set_body_json(json!({"status": "409", "scimType": "uniqueness", "detail": "userName exists"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/scim/v2/Users"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"id": "new", "userName": "new@x.example", "active": true})),
        )
        .mount(&server)
        .await;
    let manifest = format!(
        "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: {}/scim/v2\n  auth: {{ bearer_token: t }}\nusers:\n  source: hr\n  external_id: \"hr-{{{{ id }}}}\"\n  attributes:\n    userName: mail\n",
        server.uri()
    );
    let people = "users:\n  - {id: '1', mail: gone@x.example}\n  - {id: '2', mail: new@x.example}\n";
    let dir = workspace(&[("m.yaml", &manifest), ("people.yaml", people)]);
    let result =
        run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve", "--no-state", "--report", "r.json"], &[])
            .await;
    assert_eq!(result.code, 1, "{}", result.all());
    assert!(
        result.stderr.contains("user \"gone@x.example\": POST /Users failed: POST /Users was refused with HTTP 409 (uniqueness): userName exists: it exists in the target already: the service says `gone@x.example` exists (409), but no lookup finds it"),
        "{}",
        result.stderr
    );
    assert!(
        result.stderr.contains("Restore or purge it in the target, or give the person another userName"),
        "{}",
        result.stderr
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!((report["applied"].as_u64(), report["failed"].as_u64()), (Some(1), Some(1)), "{report:#}");
}

/// TLS to a server that does not speak it, and a server that does not answer in time: each
/// said in words, with what to check.
#[tokio::test]
async fn tls_and_timeouts_say_what_failed() {
    let plain = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})).set_delay(Duration::from_secs(3)))
        .mount(&plain)
        .await;
    let manifest = |base_url: &str| {
        format!(
            "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: {base_url}\n  auth: {{ bearer_token: t }}\n  max_attempts: 1\n  timeout_seconds: 1\nusers:\n  source: hr\n  attributes:\n    userName: mail\n"
        )
    };
    let https = plain.uri().replace("http://", "https://");
    let dir = workspace(&[
        ("tls.yaml", &manifest(&https)),
        ("slow.yaml", &manifest(&plain.uri())),
        ("people.yaml", "users:\n  - {id: '1', mail: a@x.example}\n"),
    ]);
    let tls = run_async(dir.path(), &["plan", "-f", "tls.yaml", "--no-state"], &[]).await;
    assert_eq!(tls.code, 1, "{}", tls.all());
    assert!(tls.stderr.contains("TLS failed"), "{}", tls.stderr);
    assert!(tls.stderr.contains("check `target.base_url` and `target.ca_file`"), "{}", tls.stderr);
    let slow = run_async(dir.path(), &["plan", "-f", "slow.yaml", "--no-state"], &[]).await;
    assert_eq!(slow.code, 1, "{}", slow.all());
    assert!(slow.stderr.contains("no answer within `timeout_seconds`"), "{}", slow.stderr);
    assert!(slow.stderr.contains("raise `target.timeout_seconds`"), "{}", slow.stderr);
}

/// The look before re-sending a POST goes through the listing too: a service without filters
/// gets no filter, and the user its lost answer stored is found here, not created twice.
#[tokio::test]
async fn a_lost_post_is_looked_up_without_a_filter_where_filters_are_unsupported() {
    use scimform::scim::{Method, ScimRequest};
    use scimform::service::TargetWriter;
    use wiremock::matchers::query_param_is_missing;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/ServiceProviderConfig"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"filter": {"supported": false}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .and(query_param_is_missing("filter"))
        .respond_with(page(&[user(1), json!({"id": "stored", "userName": "new@x.example", "active": true})], 2, 1))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/scim/v2/Users"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"status": "400", "scimType": "invalidFilter"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/scim/v2/Users"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let client = ScimClient::new(&config(&server), &[]).unwrap();
    let post = ScimRequest::new(Method::Post, "/Users").with_body(json!({"userName": "new@x.example"}));
    let answer = client.send(&post).await.unwrap();
    assert_eq!(answer.body.unwrap()["id"], "stored");
}
