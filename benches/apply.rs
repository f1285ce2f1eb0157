//! Applies 5,000 user updates (one PATCH each) at concurrency 1, 4 and 16, to the embedded
//! server and, when `SCIM2_SERVER_URL` is set (see `benches/apply.sh`), to scim2-server, and
//! reports requests per second, the ratio to the sequential run, and the ratio to the service's
//! own raw PATCH rate at the same concurrency (the same PATCHes sent by a bare HTTP client, in
//! the same run).
//!
//! The two clients take turns in blocks of 500 PATCHes, `APPLY_ROUNDS` times over the 5,000
//! users (3 unless set), the raw client going first in every other block. This 2-core VM's speed
//! drifts by half within minutes (a whole run of 5,000 each, back to back, came out anywhere
//! between 77 % and 143 %, while a profile put scimform's client about 10 µs a request above
//! the bare one): blocks of a second or two put both clients under the same drift. Each
//! client's rate is its requests over its time in all its blocks; each block pair's own ratio
//! follows (median and middle half). Beside the rates, each client's CPU time per request (this process's, from
//! `/proc/self/stat`; against the embedded server it includes the server's): the clients' own
//! cost, apart from the time they wait.
// A benchmark program: it prints and stops at the first failure.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::cast_precision_loss, clippy::disallowed_methods)]

use std::time::Instant;

use scimform::apply::execute;
use scimform::manifest::model::{Profile, TargetAuth, TargetConfig};
use scimform::plan::{Action, AttributeChange, Plan, UserChange};
use scimform::scim::{Method, ScimPath, ScimRequest};
use scimform::secret::Secret;
use scimform::service::memory::{MemoryServer, MemoryStore};
use scimform::service::{ScimClient, TargetReader, TargetWriter};
use serde_json::json;

const USERS: usize = 5000;
/// PATCHes each client sends before the other takes its turn.
const BLOCK: usize = 500;

/// The binary's allocator (`src/main.rs`), so the bench measures scimform as it runs. With
/// glibc's, scimform's apply (which keeps each answer for the state) made 78-81 % of the bare
/// client's rate against the embedded server at concurrency 1; with mimalloc, 89-97 %.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn client(base_url: &str, token: &str, concurrency: usize) -> ScimClient {
    let config = TargetConfig {
        profile: Profile::Generic,
        base_url: base_url.to_owned(),
        auth: TargetAuth::BearerToken(Secret::new(token)),
        concurrency,
        requests_per_minute: None,
        ca_file: None,
        timeout_seconds: 60,
        max_attempts: 3,
        limits: scimform::manifest::model::ReadLimits::default(),
    };
    ScimClient::new(&config, &[]).expect("a client")
}

/// Creates the users (if the target has none yet) and returns their ids.
async fn seed(base_url: &str, token: &str) -> Vec<String> {
    let client = client(base_url, token, 4);
    let existing = client.current_state(&[], &[]).await.expect("a listing").users;
    if existing.len() >= USERS {
        return existing.into_iter().map(|u| u.id).take(USERS).collect();
    }
    let requests: Vec<ScimRequest> = (0..USERS)
        .map(|i| {
            ScimRequest::new(Method::Post, "/Users").with_body(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("bench{i:05}@corp.example"), "title": "start", "active": true}))
        })
        .collect();
    let mut ids = Vec::with_capacity(USERS);
    // Four at a time: scim2-server's single-threaded WSGI server keeps a listen backlog of 5.
    for chunk in requests.chunks(4) {
        let sent = futures_util::future::join_all(chunk.iter().map(|r| client.send(r))).await;
        for response in sent {
            let body = response.expect("a create").body.expect("a created user");
            ids.push(body["id"].as_str().expect("an id").to_owned());
        }
    }
    ids
}

fn updates(ids: &[String], title: &str) -> Plan {
    let users = ids
        .iter()
        .map(|id| UserChange {
            key: id.clone(),
            action: Action::Update,
            reason: None,
            why: None,
            target_id: Some(id.clone()),
            precondition: scimform::plan::Precondition::Sha256(String::new()),
            changes: vec![AttributeChange::new(ScimPath::attribute("title"), Some(json!("x")), Some(json!(title)))],
        })
        .collect();
    Plan { users, ..Plan::default() }
}

/// CPU seconds this process has used, user and system; `None` where there is no `/proc`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command's closing parenthesis, utime and stime are the 12th and 13th fields.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0) // USER_HZ, fixed at 100 in the kernel's ABI
}

/// Requests sent, the seconds they took and the CPU seconds spent: of one block, or summed.
struct Rate {
    requests: usize,
    seconds: f64,
    cpu_seconds: Option<f64>,
}

impl Rate {
    /// Nothing sent yet: the start of a sum.
    fn none() -> Rate {
        Rate { requests: 0, seconds: 0.0, cpu_seconds: Some(0.0) }
    }

    fn measure(requests: usize, started: Instant, cpu_before: Option<f64>) -> Rate {
        let seconds = started.elapsed().as_secs_f64();
        Rate { requests, seconds, cpu_seconds: cpu_before.zip(cpu_seconds()).map(|(before, after)| after - before) }
    }

    fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn cpu_us(&self) -> Option<f64> {
        self.cpu_seconds.map(|cpu| 1e6 * cpu / self.requests as f64)
    }

    /// Adds a block; the CPU is unknown once any block's is.
    fn add(&mut self, other: &Rate) {
        self.cpu_seconds = self.cpu_seconds.zip(other.cpu_seconds).map(|(a, b)| a + b);
        self.requests += other.requests;
        self.seconds += other.seconds;
    }
}

/// The same PATCHes sent by a bare HTTP client, `concurrency` at a time: the service's own rate.
/// A PATCH is done when its answer has arrived whole, for this client as for scimform's: its
/// body is read too (the embedded server answers with the user; scim2-server with 204).
async fn raw_rate(base_url: &str, token: &str, ids: &[String], title: &str, concurrency: usize) -> Rate {
    use futures_util::{StreamExt, TryFutureExt};
    let http = reqwest::Client::new();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let sent = futures_util::stream::iter(ids.iter().map(|id| {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                          "Operations": [{"op": "replace", "path": "title", "value": title}]});
        http.patch(format!("{base_url}/Users/{id}"))
            .bearer_auth(token)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .and_then(|response| async move {
                let status = response.status();
                response.bytes().await.map(|_| status)
            })
    }))
    .buffer_unordered(concurrency)
    .collect::<Vec<_>>()
    .await;
    let rate = Rate::measure(ids.len(), started, cpu);
    assert!(sent.iter().all(|r| r.as_ref().is_ok_and(reqwest::StatusCode::is_success)), "every raw PATCH applies");
    rate
}

/// scimform's apply of the same PATCHes, `concurrency` at a time.
async fn apply_rate(base_url: &str, token: &str, ids: &[String], title: &str, concurrency: usize) -> Rate {
    let client = client(base_url, token, concurrency);
    let plan = updates(ids, title);
    let cpu = cpu_seconds();
    let started = Instant::now();
    let report = execute(&plan, &client, concurrency).await;
    let rate = Rate::measure(ids.len(), started, cpu);
    assert_eq!(report.failures().count(), 0, "every update applies");
    rate
}

/// The value `quarters` quarters of the way through `sorted` (2: the median).
fn quartile(sorted: &[f64], quarters: usize) -> f64 {
    sorted[(sorted.len() - 1) * quarters / 4]
}

async fn run(name: &str, base_url: &str, token: &str, rounds: usize) {
    let ids = seed(base_url, token).await;
    let mut sequential = None;
    for concurrency in [1, 4, 16] {
        let (mut raw, mut applied, mut paired) = (Rate::none(), Rate::none(), Vec::new());
        for round in 0..rounds {
            // The raw client goes first in every other block.
            for (block, users) in ids.chunks(BLOCK).enumerate() {
                let title = format!("at {concurrency}, round {round}, block {block}");
                // Each client writes a title of its own, so every PATCH changes the user.
                let raw_title = format!("raw {title}");
                let send_raw = || raw_rate(base_url, token, users, &raw_title, concurrency);
                let (raw_block, applied_block) = if paired.len().is_multiple_of(2) {
                    let raw_block = send_raw().await;
                    (raw_block, apply_rate(base_url, token, users, &title, concurrency).await)
                } else {
                    let applied_block = apply_rate(base_url, token, users, &title, concurrency).await;
                    (send_raw().await, applied_block)
                };
                paired.push(100.0 * applied_block.per_second() / raw_block.per_second());
                raw.add(&raw_block);
                applied.add(&applied_block);
            }
        }
        let rate = applied.per_second();
        let ratio = rate / *sequential.get_or_insert(rate);
        println!(
            "{name:<10} concurrency {concurrency:>2}: {} PATCH each, in turns of {BLOCK}: {rate:>7.0} req/s ({ratio:.2}x sequential; raw {:>7.0} req/s, {:.0} % of it)",
            applied.requests,
            raw.per_second(),
            100.0 * rate / raw.per_second()
        );
        // Each block pair ran back to back: its ratio is blurred least by the machine's drift.
        paired.sort_by(f64::total_cmp);
        println!(
            "{:<10} each of {} block pairs: median {:.0} % (middle half {:.0}-{:.0} %)",
            "",
            paired.len(),
            quartile(&paired, 2),
            quartile(&paired, 1),
            quartile(&paired, 3)
        );
        if let (Some(raw_cpu), Some(cpu)) = (raw.cpu_us(), applied.cpu_us()) {
            println!("{:<10} CPU per request: {cpu:>5.0} µs, raw {raw_cpu:>5.0} µs", "");
        }
    }
}

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let server = MemoryServer::start(MemoryStore::new(Some("bench"))).await.expect("the embedded server");
        let rounds = std::env::var("APPLY_ROUNDS").ok().and_then(|r| r.parse().ok()).filter(|r| *r > 0).unwrap_or(3);
        run("embedded", server.base_url(), "bench", rounds).await;
        match (std::env::var("SCIM2_SERVER_URL"), std::env::var("SCIM2_SERVER_TOKEN")) {
            (Ok(url), Ok(token)) => run("scim2", &url, &token, rounds).await,
            _ => println!("scim2-server skipped: run benches/apply.sh"),
        }
    });
}
