//! The PostgreSQL state store against a real PostgreSQL server (Debian's package, started on
//! 127.0.0.1 by `scripts/postgres/pg`, see `scripts/test`), over TLS: snapshots per manifest, all
//! or nothing, and the advisory lock that serves as the run lock across machines.

use std::collections::BTreeMap;
use std::time::Duration;

use scimform::commands::demo::seeded_store;
use scimform::service::memory::MemoryServer;
use scimform::service::{CurrentState, CurrentUser};
use scimform::source::{AttrValue, SourceCache, SourceRecord};
use scimform::state::{Snapshot, StateError, Store};
use serde_json::json;

use crate::common::{quickstart, run_async};

fn var(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the suite with `scripts/test`, which starts PostgreSQL"))
}

/// The test database over TLS, verified against the test CA.
fn url() -> String {
    format!(
        "{}?sslmode=require&sslrootcert={}",
        var("SCIMFORM_TEST_POSTGRES_URL"),
        var("SCIMFORM_TEST_POSTGRES_CA_FILE")
    )
}

#[tokio::test]
async fn tls_verifies_the_server_and_failures_say_why() {
    // The server's certificate is not signed by any CA of the system's: refused, with the reason.
    let plain = var("SCIMFORM_TEST_POSTGRES_URL");
    let error = Store::open(&format!("{plain}?sslmode=require"), &unique("tls")).await.unwrap_err().to_string();
    assert!(
        error.contains("cannot connect: error performing TLS handshake: invalid peer certificate: UnknownIssuer"),
        "{error}"
    );
    assert!(error.contains("sslrootcert"), "says what to check: {error}");
    assert!(!error.contains("scimform-test-pw"), "{error}");
    // A missing CA file is named.
    let error = Store::open(&format!("{plain}?sslrootcert=/nonexistent/ca.pem"), &unique("tls")).await.unwrap_err();
    assert!(error.to_string().contains("cannot use `sslrootcert` `/nonexistent/ca.pem`"), "{error}");
    // Clear text only on this machine, and only when asked for.
    drop(Store::open(&format!("{plain}?sslmode=disable"), &unique("tls")).await.unwrap());
    let remote = "postgres://scim:s3cret@192.0.2.10:5432/state?sslmode=disable";
    let error = Store::open(remote, &unique("tls")).await.unwrap_err().to_string();
    assert!(error.contains("refusing `sslmode=disable` to a host that is not this machine"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
}

/// A key no other test uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}.yaml", std::process::id())
}

fn snapshot(sha: &str, users: usize, usn: u64) -> Snapshot {
    let users_count = users;
    let users = (0..users)
        .map(|i| {
            // Sorted as the stores return them.
            let resource =
                json!({"id": format!("u{i:05}"), "userName": format!("p{i}@x"), "title": "Agent \"quoted\""});
            let mut user = CurrentUser::from_resource(resource).unwrap();
            user.version = (i % 2 == 0).then(|| format!("W/\"{i}\""));
            user
        })
        .collect();
    let mut record = SourceRecord::new("g1");
    record.insert("mail", AttrValue::Text("a@x".into()));
    Snapshot {
        manifest_sha256: sha.into(),
        target: Some(CurrentState { users, groups: BTreeMap::new() }),
        sources: BTreeMap::from([(
            "corp_ad".to_owned(),
            SourceCache {
                watermark: json!({"invocation_id": "i", "usn": usn}),
                users: std::sync::Arc::new(vec![record]),
                groups: BTreeMap::new(),
            },
        )]),
        settled: Some(scimform::state::Settled {
            sources: BTreeMap::from([("corp_ad".to_owned(), format!("usn:i:{usn}"))]),
            target_users: users_count,
            desired_users: users_count,
            plan: scimform::plan::Plan { warnings: vec!["a \"quoted\" warning".into()], ..Default::default() },
            gone: std::collections::BTreeSet::new(),
            baseline: None,
        }),
    }
}

#[tokio::test]
async fn snapshots_round_trip_per_manifest_all_or_nothing() {
    let (a, b) = (unique("a"), unique("b"));
    let mut store = Store::open(&url(), &a).await.unwrap();
    assert_eq!(store.load(&[], true).await.unwrap(), None, "a new key holds nothing");
    store.save(&snapshot("first", 2_000, 1)).await.unwrap();
    assert_eq!(store.load(&[], true).await.unwrap(), Some(snapshot("first", 2_000, 1)));

    // Another manifest's state is its own.
    let mut other = Store::open(&url(), &b).await.unwrap();
    assert_eq!(other.load(&[], true).await.unwrap(), None);
    other.save(&snapshot("other", 1, 5)).await.unwrap();
    assert_eq!(store.load(&[], true).await.unwrap(), Some(snapshot("first", 2_000, 1)));

    // Two users with one id: the transaction fails and leaves the last snapshot whole,
    // watermark included.
    let mut broken = snapshot("second", 3, 9);
    broken.target.as_mut().unwrap().users[1].id = "u00000".into();
    assert!(store.save(&broken).await.is_err());
    assert_eq!(store.load(&[], true).await.unwrap(), Some(snapshot("first", 2_000, 1)));

    store.save_progress(&snapshot("first", 2_000, 2)).await.unwrap();
    assert_eq!(store.load(&[], true).await.unwrap(), Some(snapshot("first", 2_000, 2)));

    // The head alone, and a few users by id, as a run whose last plan stood reads them.
    let head = store.load_head().await.unwrap().unwrap();
    assert_eq!(
        (head.manifest_sha256.as_str(), head.target_known, head.settled),
        ("first", true, snapshot("first", 2_000, 2).settled)
    );
    let ids = ["u01999".to_owned(), "u00007".to_owned(), "nobody".to_owned()];
    let found = store.load_users(&ids, &[]).await.unwrap();
    let all = snapshot("first", 2_000, 2).target.unwrap().users;
    assert_eq!(found, [all[7].clone(), all[1999].clone()], "those it remembers, by id");

    store.forget_target().await.unwrap();
    let forgotten = store.load(&[], true).await.unwrap().unwrap();
    assert_eq!((forgotten.target, forgotten.sources), (None, snapshot("first", 2_000, 2).sources));
    assert_eq!(store.load_head().await.unwrap().unwrap().settled, None, "no plan stands without the target");
}

/// After an apply planned against the saved users, only the rows of those written change.
#[tokio::test]
async fn a_save_of_written_users_writes_only_their_rows() {
    let mut store = Store::open(&url(), &unique("written")).await.unwrap();
    store.save(&snapshot("first", 5, 1)).await.unwrap();
    let mut next = snapshot("first", 5, 2);
    let title = scimform::scim::ScimPath::attribute("title");
    let target = next.target.as_mut().unwrap();
    target.users.retain(|u| u.id != "u00001");
    target.users[0].set(&title, json!("Lead"));
    target.users[1].set(&title, json!("not written"));
    let mut created = target.users[0].clone();
    created.id = "u00009".into();
    target.users.push(created);
    let written = ["u00000", "u00001", "u00009"].map(str::to_owned).into();
    store.save_written(&next, &written, false).await.unwrap();
    let loaded = store.load(&[], true).await.unwrap().unwrap();
    let users = loaded.target.unwrap().users;
    let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["u00000", "u00002", "u00003", "u00004", "u00009"]);
    assert_eq!(users[0].get(&title), Some(&json!("Lead")));
    assert_eq!(users[1].get(&title), Some(&json!("Agent \"quoted\"")), "u00002's row stays as saved");
    assert_eq!(loaded.sources, snapshot("first", 5, 2).sources, "the watermark moved, the records stayed");
}

/// A baseline of `users` users, its rows given out of order; value hashes span both halves of
/// `u64` (a signed column holds them) and the first user has no target user.
fn baseline(users: usize, scope: u128) -> scimform::plan::delta::Baseline {
    use scimform::plan::delta::{Baseline, BaselineUser};
    let users = (0..users)
        .rev()
        .map(|i| BaselineUser {
            key: format!("k{i:05}"),
            fingerprint: u128::MAX - u128::from(u32::try_from(i).unwrap()),
            id: (i > 0).then(|| format!("t{i}")),
        })
        .collect();
    let values = vec![(u64::MAX - 1, "t0".to_owned()), (7, "t1".to_owned()), (1 << 63, "t2".to_owned())];
    Baseline::from_parts(users, values, scope, scimform::plan::delta::hasher())
}

/// The baseline is kept in rows of its own, per manifest: it reads back as saved, goes with
/// the settled plan, and one manifest's save leaves another's rows alone.
#[tokio::test]
async fn baselines_round_trip_in_rows_per_manifest() {
    let (a, b) = (unique("baseline-a"), unique("baseline-b"));
    let mut store = Store::open(&url(), &a).await.unwrap();
    let mut other = Store::open(&url(), &b).await.unwrap();
    assert_eq!(store.load_baseline().await.unwrap(), None);
    let with = |n, scope| {
        let mut snapshot = snapshot("first", 3, 1);
        snapshot.settled = snapshot.settled.map(|s| s.with_baseline(Some(baseline(n, scope))));
        snapshot
    };
    store.save(&with(20_000, 1)).await.unwrap();
    other.save(&with(2, 2)).await.unwrap();
    assert_eq!(store.load_baseline().await.unwrap(), Some(baseline(20_000, 1)));
    assert_eq!(other.load_baseline().await.unwrap(), Some(baseline(2, 2)));

    let settled = with(5, 3).settled;
    store.save_settled(settled.as_ref()).await.unwrap();
    assert_eq!(store.load_baseline().await.unwrap(), Some(baseline(5, 3)), "saved with the settled plan alone");
    store.save_settled(None).await.unwrap();
    assert_eq!(store.load_baseline().await.unwrap(), None);
    assert_eq!(other.load_baseline().await.unwrap(), Some(baseline(2, 2)), "another manifest's stays");
}

#[tokio::test]
async fn the_advisory_lock_is_the_run_lock() {
    let key = unique("locked");
    let first = Store::open(&url(), &key).await.unwrap();
    let error = Store::open(&url(), &key).await.unwrap_err();
    assert!(matches!(error, StateError::Locked { .. }), "{error:?}");
    let message = error.to_string();
    let me = format!("scimform pid {} on host", std::process::id());
    assert!(message.contains(&format!("another scimform run holds the state lock of `{key}`")), "{message}");
    assert!(message.contains(&me), "the holder is named: {message}");
    assert!(!message.contains("scimform-test-pw"), "no password in messages: {message}");
    // Another manifest is not held up.
    drop(Store::open(&url(), &unique("free")).await.unwrap());
    // A run that may wait gets the lock once its holder is done.
    let waited = unique("waited");
    let holder = Store::open(&url(), &waited).await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(holder);
    });
    let started = std::time::Instant::now();
    let after = Store::open_waiting(&url(), &waited, Duration::from_secs(20)).await;
    assert!(after.is_ok(), "{after:?}");
    assert!(started.elapsed() >= Duration::from_millis(400), "it waited for the holder");
    release.await.unwrap();
    // The lock ends with the holder's connection.
    drop(first);
    let mut again = None;
    for _ in 0..100 {
        match Store::open(&url(), &key).await {
            Ok(store) => {
                again = Some(store);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert!(again.is_some(), "the lock is free once the first run's connection is gone");
}

/// Two applies of one manifest with one PostgreSQL state on two "machines" (no shared lock
/// file): the second fails on the advisory lock, naming the first; once the first is done, a
/// run plans against the state it left and lists nothing.
#[tokio::test]
async fn two_runs_on_one_database_do_not_interleave() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ServiceProviderConfig"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&slow)
        .await;
    let state = url();
    let (one, two) = (quickstart(), quickstart());
    // The state key is the manifest's path as given: the same on both machines.
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_scimform"))
        .current_dir(one.path())
        .args(["apply", "-f", "scimform.yaml", "--auto-approve", "--state", &state, "--refresh"])
        .env("SCIM_BASE_URL", slow.uri())
        .env("SCIM_TOKEN", "t")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until the first run has connected and holds the lock (asked of PostgreSQL itself).
    let (probe, connection) =
        tokio_postgres::connect(&var("SCIMFORM_TEST_POSTGRES_URL"), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let holder = format!("scimform pid {} on host %", first.id());
    for _ in 0..200 {
        let held: i64 = probe
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE $1",
                &[&holder],
            )
            .await
            .unwrap()
            .get(0);
        if held > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let env = [("SCIM_BASE_URL", slow.uri()), ("SCIM_TOKEN", "t".to_owned())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let second =
        run_async(two.path(), &["apply", "-f", "scimform.yaml", "--auto-approve", "--state", &state], &env).await;
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(second.code, 1, "{}", second.all());
    assert!(
        second.stderr.contains("another scimform run holds the state lock of `scimform.yaml`"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains(&format!("scimform pid {}", first.id())), "{}", second.stderr);
    assert!(!second.all().contains("scimform-test-pw"), "no password in output");
    assert!(!two.path().join("scimform.yaml.lock").exists(), "no lock file: the database holds the lock");

    // With the first run gone, the state in the database carries a scheduled run.
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let apply = ["apply", "-f", "scimform.yaml", "--auto-approve", "--state", &state, "--refresh"];
    let full = run_async(one.path(), &apply, &env).await;
    assert_eq!(full.code, 0, "{}", full.all());
    server.reset_writes();
    let idle = run_async(two.path(), &apply[..apply.len() - 1], &env).await;
    assert_eq!(idle.code, 0, "{}", idle.all());
    assert!(idle.stdout.contains("No changes."), "{}", idle.stdout);
    assert!(idle.stderr.contains("Planned against the state"), "the other machine used the state: {}", idle.stderr);
    assert_eq!(server.writes(), 0);
}

/// A run that ends in an error after its writes (here the state database goes away during the
/// apply, so the state cannot be saved) still reports every request it sent, with its status,
/// and says that writes landed.
#[tokio::test]
async fn a_run_that_ends_in_an_error_reports_every_request_sent() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};
    struct Created;
    impl Respond for Created {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            let user_name = body["userName"].as_str().unwrap().to_owned();
            ResponseTemplate::new(201)
                .set_body_json(json!({"id": format!("id-{user_name}"), "userName": user_name, "active": true}))
                .set_delay(Duration::from_secs(2))
        }
    }
    let target = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ServiceProviderConfig"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"etag": {"supported": false}})))
        .mount(&target)
        .await;
    Mock::given(method("GET"))
        .and(path("/Users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"totalResults": 0, "Resources": []})))
        .mount(&target)
        .await;
    Mock::given(method("POST")).and(path("/Users")).respond_with(Created).expect(2).mount(&target).await;
    let manifest = format!(
        "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: {}\n  auth: {{ bearer_token: t }}\nusers:\n  source: hr\n  external_id: \"hr-{{{{ id }}}}\"\n  attributes:\n    userName: mail\n",
        target.uri()
    );
    let dir = crate::common::workspace(&[
        ("m.yaml", &manifest),
        ("people.yaml", "users:\n  - {id: '1', mail: a@x.example}\n  - {id: '2', mail: b@x.example}\n"),
    ]);
    let state = url();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_scimform"))
        .current_dir(dir.path())
        .args(["apply", "-f", "m.yaml", "--auto-approve", "--state", &state, "--report", "r.json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the run holds its lock, its database connection goes away while the POSTs are out.
    let (probe, connection) =
        tokio_postgres::connect(&var("SCIMFORM_TEST_POSTGRES_URL"), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let holder = format!("scimform pid {} on host %", run.id());
    let mut terminated = false;
    for _ in 0..200 {
        let posted = target.received_requests().await.unwrap().iter().any(|r| r.method.as_str() == "POST");
        if posted {
            let rows = probe
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1",
                    &[&holder],
                )
                .await
                .unwrap();
            terminated = !rows.is_empty();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(terminated, "the run's connection was found");
    let output = tokio::task::spawn_blocking(move || run.wait_with_output().unwrap()).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("2 write(s) landed before the run stopped"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["result"], "error", "{report:#}");
    assert_eq!(report["applied"], 2, "{report:#}");
    let operations: Vec<(&str, u64)> = report["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["request"].as_str().unwrap(), o["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(operations, [("POST /Users", 201), ("POST /Users", 201)]);
}

/// The deprovision clocks (`delete_after_days`) are kept per manifest and per target, apart
/// from the snapshots, in both stores.
#[tokio::test]
async fn deprovision_clocks_round_trip_per_target() {
    let day = |n: i64| jiff::Timestamp::from_second(1_767_225_600 + n * 86_400).unwrap();
    let clocks = BTreeMap::from([("u1".to_owned(), day(0)), ("u2".to_owned(), day(3))]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.db").display().to_string();
    for location in [url(), file] {
        let key = unique("clocks");
        let mut store = Store::open(&location, &key).await.unwrap();
        assert!(store.load_clocks("https://a.example/scim").await.unwrap().is_empty());
        store.save_clocks("https://a.example/scim", &clocks).await.unwrap();
        store.save(&snapshot("first", 3, 1)).await.unwrap();
        store.forget_target().await.unwrap();
        drop(store);
        let mut store = Store::open(&location, &key).await.unwrap();
        assert_eq!(store.load_clocks("https://a.example/scim").await.unwrap(), clocks, "{location}");
        assert!(store.load_clocks("https://b.example/scim").await.unwrap().is_empty(), "another target's are its own");
    }
}
