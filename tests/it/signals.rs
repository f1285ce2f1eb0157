//! A run stopped by its scheduler: SIGTERM (a Kubernetes deadline) or SIGINT (Ctrl-C) during an
//! apply sends no new write, lets those in flight finish, reports exactly what was sent, leaves
//! no lock, and the next run converges without a duplicate.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scimform::service::memory::{MemoryServer, MemoryStore};
use serde_json::Value;

use crate::common::{run_async, workspace};

const MANIFEST: &str = "version: 1\nsources:\n  hr: { kind: file, path: people.yaml }\ntarget:\n  kind: scim\n  base_url: ${env:SCIM_BASE_URL}\n  auth: { bearer_token: \"${env:SCIM_TOKEN}\" }\nusers:\n  source: hr\n  external_id: \"hr-{{ id }}\"\n  attributes:\n    userName: mail\n";

fn people(n: usize) -> String {
    let lines: Vec<String> = (1..=n).map(|i| format!("  - {{id: '{i}', mail: u{i}@x.example}}\n")).collect();
    format!("users:\n{}", lines.concat())
}

async fn stopped_by(signal: &str, code: i32) {
    let server =
        MemoryServer::start(MemoryStore::new(Some("tok")).slow_writes(Duration::from_millis(100))).await.unwrap();
    let dir = workspace(&[("m.yaml", MANIFEST), ("people.yaml", &people(200))]);
    let child = Command::new(env!("CARGO_BIN_EXE_scimform"))
        .current_dir(dir.path())
        .args(["apply", "-f", "m.yaml", "--auto-approve", "--report", "r.json"])
        .env("SCIM_BASE_URL", server.base_url())
        .env("SCIM_TOKEN", "tok")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Some writes landed, many to go.
    let started = Instant::now();
    while server.writes() < 12 {
        assert!(started.elapsed() < Duration::from_secs(30), "the apply never started writing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let took = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "{signal}: {stderr}");
    assert!(took < Duration::from_secs(10), "ended within the bound: {took:?}");
    assert!(stderr.contains("no write was sent after it"), "{stderr}");

    let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["result"], "interrupted");
    let sent = report["operations"].as_array().unwrap().len();
    let received = server.recorded_writes().len();
    assert_eq!(sent, received, "the report lists exactly the requests the server received");
    assert!(received < 200, "it stopped: {received}");
    assert!(!dir.path().join("m.yaml.lock").exists(), "no lock left");

    // The next run converges, creating no duplicate.
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "tok")];
    let next = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(next.code, 0, "{}", next.all());
    let users = server.users();
    let mut names: Vec<&str> = users.iter().filter_map(|u| u["userName"].as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!((users.len(), names.len()), (200, 200), "every user once");
    let again = run_async(dir.path(), &["plan", "-f", "m.yaml"], &env).await;
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
}

#[tokio::test]
async fn sigterm_during_an_apply_ends_it_with_143_and_a_report_of_what_was_sent() {
    stopped_by("-TERM", 143).await;
}

#[tokio::test]
async fn sigint_during_an_apply_ends_it_with_130_and_a_report_of_what_was_sent() {
    stopped_by("-INT", 130).await;
}

/// A plan stops at once, with the same codes.
#[tokio::test]
async fn a_signal_stops_a_plan_at_once() {
    let server = MemoryServer::start(MemoryStore::new(Some("tok"))).await.unwrap();
    // A target that never answers its listing: the plan waits on it until stopped.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}/scim/v2", listener.local_addr().unwrap());
    drop(server);
    let dir = workspace(&[("m.yaml", MANIFEST), ("people.yaml", &people(3))]);
    let child = Command::new(env!("CARGO_BIN_EXE_scimform"))
        .current_dir(dir.path())
        .args(["plan", "-f", "m.yaml", "--no-state"])
        .env("SCIM_BASE_URL", &silent)
        .env("SCIM_TOKEN", "tok")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    assert_eq!(output.status.code(), Some(143), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Interrupted by SIGTERM."));
    drop(listener);
}
