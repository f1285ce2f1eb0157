//! Latency hidden: a whole `apply` against a Genesys double far away, as a cloud API is. The
//! embedded server in Genesys mode answers every request 300 ms after it arrives and allows 300
//! requests a minute (more are answered 429 with `Retry-After`); the manifest's `rate_limit`
//! says the same. 2,000 users, 10 % drifted (a title), 1 % missing: about 100 listing pages (25
//! a page, active and inactive passes) and 220 writes. The floor is the time the rate limit
//! alone imposes on the run's requests (requests ÷ 5 per second); the run is reported against it.
//!
//! Run with `cargo bench --bench latency` (`LATENCY_USERS` to change the 2,000).
// A benchmark program: it prints and stops at the first failure.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::cast_precision_loss, clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use scimform::service::genesys_rules::GenesysRules;
use scimform::service::memory::{MemoryServer, MemoryStore};
use serde_json::json;

const LATENCY: Duration = Duration::from_millis(300);
const PER_MINUTE: u32 = 300;

const MANIFEST: &str = r#"version: 1
sources:
  hr: { kind: file, path: people.json }
target:
  kind: scim
  profile: genesys
  base_url: ${env:URL}
  auth: { bearer_token: t }
  concurrency: 8
  rate_limit: { requests_per_minute: 300 }
users:
  source: hr
  external_id: "hr-{{ id }}"
  attributes:
    userName: "{{ mail | lower }}"
    displayName: "{{ givenName }} {{ sn }}"
    title: title
  deprovision: { action: disable, max_percent: 100 }
"#;

fn main() {
    let users: usize = std::env::var("LATENCY_USERS").ok().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let drifted = users / 10;
    let missing = users / 100;
    let mut store =
        MemoryStore::new(Some("t")).genesys(GenesysRules::default()).with_latency(LATENCY).rate_limited(PER_MINUTE);
    let mut people = String::from("{\"users\": [\n");
    for i in 0..users {
        let mail = format!("person.{i:06}@corp.example");
        let _ = write!(
            people,
            "{}{{\"id\": \"{i}\", \"mail\": \"{mail}\", \"givenName\": \"Person\", \"sn\": \"{i:06}\", \"title\": \"Agent\"}}",
            if i == 0 { "" } else { ",\n" }
        );
        if i >= users - missing {
            continue;
        }
        let title = if i < drifted { "Trainee" } else { "Agent" };
        store.insert_user(json!({
            "userName": mail, "displayName": format!("Person {i:06}"), "title": title,
            "externalId": format!("hr-{i}"), "active": true,
        }));
    }
    people.push_str("\n]}\n");
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("people.json"), people).expect("people.json");
    std::fs::write(dir.path().join("m.yaml"), MANIFEST).expect("m.yaml");

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let server = runtime.block_on(MemoryServer::start(store)).expect("the embedded server");
    println!(
        "machine: {} cores; {users} users, {drifted} drifted, {missing} missing; every request {} ms, {PER_MINUTE} a minute",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        LATENCY.as_millis()
    );
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_scimform"))
        .current_dir(dir.path())
        .args(["apply", "-f", "m.yaml", "--auto-approve", "--no-state"])
        .env("URL", server.base_url())
        .env("NO_COLOR", "1")
        .output()
        .expect("scimform runs");
    let elapsed = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // `Requests: 81 GET 200, 220 PATCH 200, …; 0 retries, …`
    let line = stderr.lines().find(|l| l.starts_with("Requests: ")).expect("the requests line");
    let counts = line.trim_start_matches("Requests: ").split(';').next().unwrap_or_default();
    let requests: usize =
        counts.split(", ").filter_map(|c| c.split_whitespace().next().and_then(|n| n.parse::<usize>().ok())).sum();
    let floor = requests as f64 * 60.0 / f64::from(PER_MINUTE);
    println!("{line}");
    println!("writes: {}", server.writes());
    println!(
        "apply: {elapsed:.1} s for {requests} requests; the rate limit's floor {floor:.1} s; ratio {:.2}",
        elapsed / floor
    );
    let per_minute = requests as f64 * 60.0 / elapsed;
    println!(
        "rate: {per_minute:.0} requests a minute, {:.1} % of the {PER_MINUTE} configured",
        100.0 * per_minute / f64::from(PER_MINUTE)
    );
}
