//! A whole run at scale: 100,000 users (`SCALE_USERS` to change it) from a JSON people file to the
//! embedded SCIM server, in-process: the first run (all creates), a run with nothing to do, and a
//! run after 1 % of the people changed title; then the same with a state file (the first run
//! fills it, the next plan against it). Prints wall time, requests and peak memory.
//!
//! Run with `cargo bench --bench scale`. The embedded server runs in a child process (this
//! program again, with `SCALE_SERVE` set), and so does each run (`SCALE_RUN`, the people file
//! written before it starts), so the peak memory printed, from `/proc/self/status`, is that
//! run's alone: sources, desired and current state, plan, client. A run goes the way `apply`
//! goes: `plan_run`, then `pipeline::apply` when the plan changes something, then the state.
// A benchmark program: it prints and stops at the first failure.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::cast_precision_loss, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use scimform::manifest::MapEnvironment;
use scimform::pipeline::{client_for, plan_run};
use scimform::progress::Progress;
use scimform::scim::Method;
use scimform::service::memory::{MemoryServer, MemoryStore};
use scimform::settings::RunSettings;
use scimform::state::RunState;

/// The binary's allocator (`src/main.rs`), so that a run here costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MANIFEST: &str = r#"version: 1
sources:
  hr: { kind: file, path: people.json }
target:
  kind: scim
  base_url: ${env:URL}
  auth: { bearer_token: t }
  concurrency: 16
users:
  source: hr
  external_id: "hr-{{ id }}"
  attributes:
    userName: "{{ mail | lower }}"
    displayName: "{{ givenName }} {{ sn }}"
    name.givenName: givenName
    name.familyName: sn
    'emails[type eq "work"].value': "{{ mail | lower }}"
    title: title
    urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department: department
"#;

fn people(count: usize, changed: usize) -> String {
    let mut out = String::from("{\"users\": [\n");
    for i in 0..count {
        let title = if i < changed { "Team Lead" } else { "Agent" };
        let _ = write!(
            out,
            "{}{{\"id\": \"{i}\", \"mail\": \"Person.{i:06}@corp.example\", \"givenName\": \"Person\", \"sn\": \"{i:06}\", \"title\": \"{title}\", \"department\": \"Dept {}\"}}",
            if i == 0 { "" } else { ",\n" },
            i % 40
        );
    }
    out.push_str("\n]}\n");
    out
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// One run over the people file in `dir`; with `state`, planned against the state file and
/// remembered in it afterwards.
async fn run(label: &str, base_url: &str, dir: &Path, state_file: Option<&Path>) {
    let env = MapEnvironment(BTreeMap::from([("URL".to_owned(), base_url.to_owned())]));
    let manifest = scimform::manifest::parse(MANIFEST, "scale.yaml", &env, dir).expect("the manifest");
    let location = state_file.map(|p| p.display().to_string());
    let settings = RunSettings::driven(dir.join("scale.yaml"), location.clone(), jiff::Timestamp::now());
    let client = client_for(&manifest).expect("a client");
    let started = Instant::now();
    let mut run_state =
        RunState::open(location.as_deref(), false, &manifest, &settings.manifest, std::time::Duration::ZERO)
            .await
            .expect("the state file");
    let mut planned =
        plan_run(&manifest, &settings, &client, run_state.as_mut(), Progress::default()).await.expect("a plan");
    let plan = std::mem::take(&mut planned.plan);
    let planned_at = started.elapsed();
    let peak_planned = peak_rss_mib();
    let reads = std::mem::take(&mut planned.sources);
    let (target, settled) = if plan.has_changes() {
        let applied = scimform::pipeline::apply(&manifest, &plan, &mut planned, &client, Progress::default()).await;
        assert_eq!(applied.report.failures().count(), 0, "{:?}", applied.report.failures().next());
        (applied.target, None)
    } else {
        (planned.target_unwritten(), planned.settled.take())
    };
    let saving = Instant::now();
    if let Some(state) = run_state.as_mut() {
        state.saw_modified(client.newest_modified());
        state.save(&manifest, target, reads, settled).await.expect("the state is saved");
    }
    let saved_in = saving.elapsed();
    let total = started.elapsed();
    let stats = client.stats();
    let requests: usize = stats.by_status.values().sum();
    let writes: usize = stats.by_status.iter().filter(|((method, _), _)| *method != Method::Get).map(|(_, n)| n).sum();
    println!(
        "{label:<28} read+plan {:>6.2} s, state saved {:>5.2} s, total {:>6.2} s; {} changes; {requests} requests ({writes} writes); peak RSS {:.0} MiB ({:.0} MiB when planned)",
        planned_at.as_secs_f64(),
        saved_in.as_secs_f64(),
        total.as_secs_f64(),
        plan.users.len(),
        peak_rss_mib(),
        peak_planned
    );
}

/// The child process: the embedded server, until its stdin closes.
async fn serve() {
    let server = MemoryServer::start(MemoryStore::new(None)).await.expect("the embedded server");
    println!("{}", server.base_url());
    std::io::stdout().flush().expect("the parent reads the URL");
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await
        .expect("the stdin reader")
        .expect("stdin");
}

/// The runs, in order: label (those of `state:` use the state file), and the changed titles
/// in per mille of the users. A state run whose plan changes nothing leaves it settled: the
/// next one with nothing changed says so from the state's head (`state: no changes`).
const RUNS: [(&str, usize); 7] = [
    ("first run (all creates)", 0),
    ("no changes (full read)", 0),
    ("1 % changed titles", 10),
    ("state: full read, saved", 10),
    ("state: no changes", 10),
    ("state: 1 % changed back", 0),
    ("state: the run after", 0),
];

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::var_os("SCALE_SERVE").is_some() {
        serve().await;
        return;
    }
    let count: usize = std::env::var("SCALE_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    // One run in this process (a child of the process below), so its peak memory is its own.
    if let Ok(number) = std::env::var("SCALE_RUN") {
        let (label, _) = RUNS[number.parse::<usize>().expect("a run number")];
        let server = std::env::var("SCALE_SERVER").expect("the server's URL");
        let dir = PathBuf::from(std::env::var("SCALE_DIR").expect("the people file's directory"));
        let state = std::env::var("SCALE_STATE").ok().filter(|_| label.starts_with("state"));
        run(label, &server, &dir, state.as_deref().map(Path::new)).await;
        return;
    }
    println!(
        "machine: {} cores; {count} users; file source -> embedded SCIM server in a child process; each run in a process of its own",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let mut child = std::process::Command::new(std::env::current_exe().expect("this program"))
        .env("SCALE_SERVE", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the server process");
    let mut url = String::new();
    std::io::BufReader::new(child.stdout.take().expect("its stdout")).read_line(&mut url).expect("its URL");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state = dir.path().join("state.db");
    for (i, (_, per_mille)) in RUNS.iter().enumerate() {
        std::fs::write(dir.path().join("people.json"), people(count, count * per_mille / 1000))
            .expect("the people file");
        let status = std::process::Command::new(std::env::current_exe().expect("this program"))
            .env("SCALE_RUN", i.to_string())
            .env("SCALE_SERVER", url.trim())
            .env("SCALE_STATE", &state)
            .env("SCALE_DIR", dir.path())
            .status()
            .expect("a run");
        assert!(status.success(), "run {i} failed");
    }
    drop(child.stdin.take());
    child.wait().expect("the server process ends");
}
