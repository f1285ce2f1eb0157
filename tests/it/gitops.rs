//! The GitOps workflow end to end: saved plans and their preconditions, output formats, the
//! deprovisioning rails, the run lock, reports, focus and explain, through the binary.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use scimform::commands::demo::seeded_store;
use scimform::plan::PlanDocument;
use scimform::service::memory::{MemoryServer, MemoryStore};
use serde_json::{Value, json};

use crate::common::{quickstart, repo_root, run_async, workspace};

fn user_id(server: &MemoryServer, user_name: &str) -> String {
    server.user(user_name).unwrap_or_else(|| panic!("no user {user_name}"))["id"].as_str().unwrap().to_owned()
}

fn read_plan(dir: &Path, name: &str) -> PlanDocument {
    PlanDocument::from_json(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

/// The requests a plan file says it will send, as `METHOD /path`, sorted.
fn planned_requests(plan: &PlanDocument) -> Vec<String> {
    let mut requests: Vec<String> = plan
        .plan
        .users
        .iter()
        .map(|u| match &u.target_id {
            None => "POST /Users".to_owned(),
            Some(id) => format!("PATCH /Users/{id}"),
        })
        .chain(plan.plan.groups.iter().map(|g| format!("PATCH /Groups/{}", g.target_id)))
        .collect();
    requests.sort();
    requests
}

fn recorded_requests(server: &MemoryServer) -> Vec<String> {
    let mut requests: Vec<String> =
        server.recorded_writes().iter().map(|w| format!("{} {}", w.method, w.path)).collect();
    requests.sort();
    requests
}

async fn saved_plan_round(store: MemoryStore) {
    let server = MemoryServer::start(store).await.unwrap();
    let etags = server.users().iter().all(|u| u.pointer("/meta/version").is_some());
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();

    let planned = run_async(dir.path(), &["plan", "-f", "scimform.yaml", "--out", "plan.json"], &env).await;
    assert_eq!(planned.code, 0, "{}", planned.all());
    assert!(planned.stderr.contains("scimform apply plan.json"), "{}", planned.stderr);
    let text = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    assert!(!text.contains("demo-token"), "a plan file holds no secret");
    let document = read_plan(dir.path(), "plan.json");
    assert_eq!(document.manifest.path, "scimform.yaml");
    for user in document.plan.users.iter().filter(|u| u.target_id.is_some()) {
        let kind = match user.precondition {
            scimform::plan::Precondition::Etag(_) => "etag",
            scimform::plan::Precondition::Sha256(_) => "sha256",
            scimform::plan::Precondition::Absent => "absent",
        };
        assert_eq!(kind, if etags { "etag" } else { "sha256" }, "{}", user.key);
    }

    // A hand edit to a managed attribute of a user the plan touches.
    let ada = user_id(&server, "ada.lovelace@corp.example");
    server.edit_user(&ada, |u| u["title"] = json!("Edited By Hand"));
    let stale = run_async(dir.path(), &["apply", "plan.json"], &env).await;
    assert_eq!(stale.code, 1, "{}", stale.all());
    assert!(stale.stderr.contains("the target changed since the plan was made: 1 resource(s)"), "{}", stale.stderr);
    assert!(stale.stderr.contains("user \"ada.lovelace@corp.example\""), "{}", stale.stderr);
    assert!(stale.stderr.contains("nothing was applied"), "{}", stale.stderr);
    assert_eq!(server.writes(), 0, "a stale plan writes nothing");
    assert_eq!(server.user("ada.lovelace@corp.example").unwrap()["title"], "Edited By Hand");

    // A fresh plan, with the manifest edited after planning: refused before any request.
    let planned = run_async(dir.path(), &["plan", "-f", "scimform.yaml", "--out", "plan2.json"], &env).await;
    assert_eq!(planned.code, 0, "{}", planned.all());
    let manifest = dir.path().join("scimform.yaml");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{original}# edited\n")).unwrap();
    let changed = run_async(dir.path(), &["apply", "plan2.json"], &env).await;
    assert_eq!(changed.code, 1);
    assert!(
        changed.stderr.contains("the manifest `scimform.yaml` changed since the plan was made"),
        "{}",
        changed.stderr
    );
    std::fs::write(&manifest, original).unwrap();
    assert_eq!(server.writes(), 0);

    // Without ETags, an edit the manifest does not manage leaves the plan applicable.
    if !etags {
        let ada = user_id(&server, "ada.lovelace@corp.example");
        server.edit_user(&ada, |u| u["nickName"] = json!("Ada"));
    }

    // Unchanged target: exactly the plan's operations, and a report of each.
    let document = read_plan(dir.path(), "plan2.json");
    let applied = run_async(dir.path(), &["apply", "plan2.json", "--report", "report.json"], &env).await;
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(recorded_requests(&server), planned_requests(&document));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["result"], "applied");
    assert_eq!(report["failed"], 0);
    assert_eq!(report["applied"], json!(planned_requests(&document).len()));
    assert!(report["operations"].as_array().unwrap().iter().all(|o| o["status"].as_u64().is_some()), "{report}");
    assert_eq!(server.user("ada.lovelace@corp.example").unwrap()["title"], "Support Engineer");

    // The same plan again: everything it touched has changed since, so nothing is sent twice.
    server.reset_writes();
    let replay = run_async(dir.path(), &["apply", "plan2.json"], &env).await;
    assert_eq!(replay.code, 1, "{}", replay.all());
    assert_eq!(server.writes(), 0);

    let after = run_async(dir.path(), &["plan", "-f", "scimform.yaml", "--detailed-exitcode"], &env).await;
    assert_eq!((after.code, after.stdout.as_str()), (0, "No changes. The target matches the manifest.\n"));
}

/// With ETags (`meta.version`): the precondition is the version, sent as `If-Match` too.
#[tokio::test]
async fn a_saved_plan_applies_exactly_or_not_at_all_with_etags() {
    saved_plan_round(seeded_store()).await;
}

/// Without ETags: the precondition is the sha256 of the managed attributes as read, so an edit
/// to an attribute the manifest does not manage leaves the plan applicable.
#[tokio::test]
async fn a_saved_plan_applies_exactly_or_not_at_all_without_etags() {
    saved_plan_round(seeded_store().without_etags()).await;
}

/// A people file of `count` users.
fn people(count: usize) -> String {
    let mut text = String::from("users:\n");
    for i in 0..count {
        let _ = writeln!(
            text,
            "  - {{id: '{i}', mail: user{i}@x.example, givenName: U, sn: '{i}', title: Agent, department: D}}"
        );
    }
    text
}

/// The quickstart manifest with a people file of `count` users and a 10 % rail.
fn rail_workspace(count: usize) -> tempfile::TempDir {
    let manifest = std::fs::read_to_string(repo_root().join("examples/quickstart/scimform.yaml"))
        .unwrap()
        .replace("deprovision: { action: disable, max: 25 }", "deprovision: { action: disable, max_percent: 10 }");
    let manifest = manifest.split("groups:").next().unwrap().to_owned();
    workspace(&[("scimform.yaml", &manifest), ("people.yaml", &people(count))])
}

#[tokio::test]
async fn losing_40_percent_of_the_source_is_blocked_until_allowed() {
    let server = MemoryServer::start(MemoryStore::new(Some("demo-token"))).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = rail_workspace(10);
    let first = run_async(dir.path(), &["apply", "-f", "scimform.yaml", "--auto-approve"], &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(server.users().len(), 10);

    // The source loses 4 of its 10 users.
    std::fs::write(dir.path().join("people.yaml"), people(6)).unwrap();
    server.reset_writes();

    let plan = run_async(dir.path(), &["plan", "-f", "scimform.yaml", "--out", "plan.json"], &env).await;
    assert_eq!(plan.code, 1, "a blocked plan is an error: {}", plan.all());
    assert!(plan.stdout.contains("Plan: 0 to create, 0 to update, 0 to adopt, 4 to disable"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("Error: this plan is blocked: the plan deprovisions 4 of 10 owned users (40.0 %), more than `users.deprovision.max_percent` (10 %)"),
        "{}",
        plan.stdout
    );

    for args in [
        &["apply", "-f", "scimform.yaml", "--auto-approve"][..],
        &["apply", "-f", "scimform.yaml", "--auto-approve", "--allow-deprovision", "3"],
        &["apply", "plan.json"],
    ] {
        let refused = run_async(dir.path(), args, &env).await;
        assert_eq!(refused.code, 1, "{args:?}: {}", refused.all());
        assert!(
            refused.stderr.contains("nothing was applied") || refused.stderr.contains("Nothing was applied"),
            "{}",
            refused.stderr
        );
        assert_eq!(server.writes(), 0, "{args:?} wrote");
    }
    let hint = run_async(dir.path(), &["apply", "plan.json"], &env).await;
    assert!(hint.stderr.contains("pass `--allow deprovision=4`"), "{}", hint.stderr);

    let allowed = run_async(dir.path(), &["apply", "plan.json", "--allow-deprovision", "4"], &env).await;
    assert_eq!(allowed.code, 0, "{}", allowed.all());
    assert_eq!(server.writes(), 4);
    assert_eq!(server.users().iter().filter(|u| u["active"] == false).count(), 4);
}

#[tokio::test]
async fn a_second_apply_on_the_same_lock_names_the_holder() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    // A target that answers slowly, so the first apply holds the lock for a while.
    let target = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/ServiceProviderConfig"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&target)
        .await;
    let dir = quickstart();
    let env = [("SCIM_BASE_URL", target.uri()), ("SCIM_TOKEN", "t".to_owned())];
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_scimform"))
        .current_dir(dir.path())
        .args(["apply", "-f", "scimform.yaml", "--auto-approve", "--lock-file", "run.lock"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = dir.path().join("run.lock");
    for _ in 0..200 {
        if std::fs::read_to_string(&lock).is_ok_and(|t| t.ends_with('}')) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let second =
        run_async(dir.path(), &["apply", "-f", "scimform.yaml", "--auto-approve", "--lock-file", "run.lock"], &env)
            .await;
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(second.code, 1, "{}", second.all());
    assert!(
        second.stderr.contains(&format!("another scimform run holds the lock `run.lock`: pid {}", first.id())),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("\n  hint: wait for it to finish"), "{}", second.stderr);
}

#[tokio::test]
async fn formats_render_the_same_plan() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();
    let args = ["plan", "-f", "scimform.yaml", "--out", "plan.json"];
    let markdown = run_async(dir.path(), &[&args[..], &["--format", "markdown"]].concat(), &env).await;
    assert_eq!(markdown.code, 0, "{}", markdown.all());
    assert!(markdown.stdout.starts_with("### scimform plan\n"), "{}", markdown.stdout);
    assert!(
        markdown.stdout.contains("```diff\n- title = \"Engineer\"\n+ title = \"Support Engineer\"\n```"),
        "{}",
        markdown.stdout
    );
    let json = run_async(dir.path(), &["plan", "-f", "scimform.yaml", "--format", "json"], &env).await;
    assert_eq!(
        json.stdout,
        std::fs::read_to_string(dir.path().join("plan.json")).unwrap(),
        "--format json prints the plan file"
    );
    let text = run_async(dir.path(), &["plan", "-f", "scimform.yaml"], &env).await;
    assert!(!text.stdout.contains('\u{1b}'), "no colours when stdout is not a terminal");
    assert_eq!(server.writes(), 0);
}

#[tokio::test]
async fn target_focuses_and_explain_shows_one_user() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();

    let focused = run_async(
        dir.path(),
        &["apply", "-f", "scimform.yaml", "--auto-approve", "--target", "user:Ada.Lovelace@corp.example"],
        &env,
    )
    .await;
    assert_eq!(focused.code, 0, "{}", focused.all());
    assert!(
        focused.stdout.contains("Plan: 0 to create, 1 to update, 0 to adopt, 0 to disable, 0 to delete, 0 groups"),
        "{}",
        focused.stdout
    );
    assert!(focused.stderr.contains("Warning: resource targeting is in effect"), "{}", focused.all());
    let ada = user_id(&server, "ada.lovelace@corp.example");
    assert_eq!(recorded_requests(&server), [format!("PATCH /Users/{ada}")]);

    let explained = run_async(dir.path(), &["explain", "-f", "scimform.yaml", "alan.turing@corp.example"], &env).await;
    assert_eq!(explained.code, 0, "{}", explained.all());
    let out = &explained.stdout;
    for expected in [
        "User \"alan.turing@corp.example\"",
        "Source record (source `people`, id \"1003\"):",
        "  title = \"Analyst\"",
        "Mappings (each attribute: its mapping, the values it read and each step):",
        "  userName = \"alan.turing@corp.example\"\n      <- template \"{{ mail | lower }}\"\n         mail = \"alan.turing@corp.example\"\n         | lower -> \"alan.turing@corp.example\"",
        "  title = \"Analyst\"\n      <- source attribute `title`\n         title = \"Analyst\"",
        "Desired state:",
        "  externalId = \"hr-1003\"",
        "  member of pairings: none",
        "Target user (id ",
        "Plan for this user:",
        "- member \"alan.turing@corp.example\"",
        "PATCH /Groups/",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    let writes = server.writes();
    let nobody = run_async(dir.path(), &["explain", "-f", "scimform.yaml", "nobody@corp.example"], &env).await;
    assert_eq!(nobody.code, 0, "{}", nobody.all());
    assert!(
        nobody.stdout.contains("Source record: none") && nobody.stdout.contains("Target: no user"),
        "{}",
        nobody.stdout
    );
    assert_eq!(server.writes(), writes, "explain never writes");
}

/// One refused operation: the rest is applied, the exit status is 1, and the report says which.
#[tokio::test]
async fn an_apply_with_a_failed_operation_exits_1_and_reports_it() {
    use wiremock::matchers::{body_partial_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let target = MockServer::start().await;
    let list =
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []});
    Mock::given(method("GET"))
        .and(path("/Users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list))
        .mount(&target)
        .await;
    Mock::given(method("GET"))
        .and(path("/ServiceProviderConfig"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"patch": {"supported": true}, "etag": {"supported": false}})),
        )
        .mount(&target)
        .await;
    let refused = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "scimType": "invalidValue", "detail": "title is not allowed"});
    Mock::given(method("POST"))
        .and(path("/Users"))
        .and(body_partial_json(json!({"userName": "bad@x.example"})))
        .respond_with(ResponseTemplate::new(400).set_body_json(refused))
        .with_priority(1)
        .mount(&target)
        .await;
    Mock::given(method("POST"))
        .and(path("/Users"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "new-1"})))
        .with_priority(2)
        .expect(1)
        .mount(&target)
        .await;
    let people = "users:\n  - {id: '1', mail: good@x.example}\n  - {id: '2', mail: bad@x.example}\n";
    let manifest = "version: 1\nsources:\n  hr: { kind: file, path: people.yaml }\ntarget:\n  kind: scim\n  base_url: ${env:URL}\n  auth: { bearer_token: t }\nusers:\n  source: hr\n  attributes:\n    userName: mail\n";
    let dir = workspace(&[("m.yaml", manifest), ("people.yaml", people)]);
    let url = target.uri();
    let applied =
        run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve", "--report", "r.json"], &[("URL", &url)])
            .await;
    assert_eq!(applied.code, 1, "{}", applied.all());
    assert!(
        applied.stderr.contains("Apply finished with errors: 1 operation(s) failed, 1 applied:"),
        "{}",
        applied.stderr
    );
    assert!(
        applied.stderr.contains(
            "user \"bad@x.example\": POST /Users was refused with HTTP 400 (invalidValue): title is not allowed"
        ),
        "{}",
        applied.stderr
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(
        (report["result"].clone(), report["applied"].clone(), report["failed"].clone()),
        (json!("failed"), json!(1), json!(1))
    );
    let failed: Vec<&Value> =
        report["operations"].as_array().unwrap().iter().filter(|o| o.get("error").is_some()).collect();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["resource"], "user \"bad@x.example\"");

    // A refusal before any write is an error in the report too.
    let missing = run_async(dir.path(), &["apply", "nope.json", "--report", "r.json"], &[("URL", &url)]).await;
    assert_eq!(missing.code, 1);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["result"], "error");
    assert!(report["error"].as_str().unwrap().contains("cannot read `nope.json`"), "{report}");
}

/// On a terminal (a pseudo-terminal from util-linux's `script`): progress on stderr, colours on
/// stdout, and the run still ends (the progress ticker and the command share stderr).
#[tokio::test]
async fn a_terminal_gets_progress_and_colours() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let dir = quickstart();
    let command = format!("{} apply -f scimform.yaml --auto-approve", env!("CARGO_BIN_EXE_scimform"));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .env("SCIM_BASE_URL", server.base_url())
        .env("SCIM_TOKEN", "demo-token")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux's `script` runs");
    let status = tokio::task::spawn_blocking(move || {
        for _ in 0..600 {
            if let Some(status) = child.try_wait().unwrap() {
                let mut seen = String::new();
                std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut seen).unwrap();
                return Some((status, seen));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().unwrap();
        None
    })
    .await
    .unwrap();
    let (status, seen) = status.expect("a run on a terminal finishes within 60 s");
    assert!(status.success(), "{seen}");
    assert!(seen.contains("Reading users from the target"), "no progress in:\n{seen}");
    assert!(seen.contains("\u{1b}[32m+\u{1b}[0m user"), "no colours in:\n{seen}");
    assert!(seen.contains("Apply complete! 6 operation(s) applied."), "{seen}");
    assert_eq!(server.users().iter().filter(|u| u["active"] == false).count(), 2);
}

/// A mapping that fails for one record stops the plan, and `explain` shows where it failed.
#[tokio::test]
async fn explain_shows_a_failing_mapping() {
    let server = MemoryServer::start(MemoryStore::new(Some("t"))).await.unwrap();
    let people = "users:\n  - {id: '1', mail: a@x.example, phone: '(201) 555-0123'}\n  - {id: '2', mail: b@x.example, phone: '12'}\n";
    let manifest = r#"version: 1
sources:
  hr: { kind: file, path: people.yaml }
target:
  kind: scim
  base_url: ${env:URL}
  auth: { bearer_token: t }
users:
  source: hr
  attributes:
    userName: mail
    'phoneNumbers[type eq "work"].value': '{{ phone | e164("US") }}'
"#;
    let dir = workspace(&[("m.yaml", manifest), ("people.yaml", people)]);
    let env = [("URL", server.base_url())];
    let plan = run_async(dir.path(), &["plan", "-f", "m.yaml"], &env).await;
    assert_eq!(plan.code, 1);
    assert!(
        plan.stderr.contains("source record `2`: `phoneNumbers[type eq \"work\"].value`: `12` is not a"),
        "{}",
        plan.stderr
    );
    assert!(plan.stderr.contains("`scimform explain`"), "{}", plan.stderr);
    let explained = run_async(dir.path(), &["explain", "-f", "m.yaml", "b@x.example"], &env).await;
    assert_eq!(explained.code, 0, "{}", explained.all());
    assert!(
        explained.stdout.contains("phoneNumbers[type eq \"work\"].value = error: `12` is not a"),
        "{}",
        explained.stdout
    );
    assert!(explained.stdout.contains("         phone = \"12\""), "{}", explained.stdout);
    assert!(explained.stdout.contains("Problems (a plan refuses to run"), "{}", explained.stdout);
    let fine = run_async(dir.path(), &["explain", "-f", "m.yaml", "a@x.example"], &env).await;
    assert!(fine.stdout.contains("| e164(\"US\") -> \"+12015550123\""), "{}", fine.stdout);
    assert_eq!(server.writes(), 0);
}

/// `show PLAN_FILE` prints a saved plan byte for byte as `plan` printed it, in each format.
#[tokio::test]
async fn show_prints_a_saved_plan_as_plan_printed_it() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();
    for format in ["text", "markdown", "json"] {
        let planned = run_async(
            dir.path(),
            &["plan", "-f", "scimform.yaml", "--no-state", "--format", format, "--out", "p.json"],
            &env,
        )
        .await;
        assert_eq!(planned.code, 0, "{}", planned.all());
        assert!(planned.stdout.contains("user"), "{format}: a plan with changes: {}", planned.stdout);
        let shown = run_async(dir.path(), &["show", "p.json", "--format", format], &[]).await;
        assert_eq!(shown.code, 0, "{}", shown.all());
        assert_eq!(shown.stdout, planned.stdout, "{format}");
    }
    let not_a_plan = run_async(dir.path(), &["show", "scimform.yaml"], &[]).await;
    assert_eq!(not_a_plan.code, 1);
    assert!(not_a_plan.stderr.contains("cannot show the plan file `scimform.yaml`"), "{}", not_a_plan.stderr);
    assert!(not_a_plan.stderr.contains("hint: give a file written by `scimform plan --out`"), "{}", not_a_plan.stderr);
}

/// Prometheus text, strictly: `# HELP`/`# TYPE` lines and samples `name{labels} value`, each
/// metric declared before its samples. Returns the samples.
fn prometheus_samples(text: &str) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    let mut declared = std::collections::BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            declared.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let labels = body
                    .split(',')
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap();
                        (k.to_owned(), v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap().to_owned())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, std::collections::BTreeMap::new()),
        };
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        assert!(declared.contains(name), "a sample before its TYPE: {line}");
        samples.push((name.to_owned(), labels, value));
    }
    samples
}

#[tokio::test]
#[expect(clippy::float_cmp, reason = "counts written as whole numbers compare exactly")]
async fn the_metrics_file_parses_and_its_counts_equal_the_reports() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let base_url = server.base_url().to_owned();
    let env = [("SCIM_BASE_URL", base_url.as_str()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();
    let args = ["apply", "-f", "scimform.yaml", "--auto-approve", "--report", "r.json", "--metrics-file", "m.prom"];
    let applied = run_async(dir.path(), &args, &env).await;
    assert_eq!(applied.code, 0, "{}", applied.all());
    let samples = prometheus_samples(&std::fs::read_to_string(dir.path().join("m.prom")).unwrap());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("r.json")).unwrap()).unwrap();
    let value = |name: &str| samples.iter().find(|(n, _, _)| n == name).map(|(_, _, v)| *v);
    let operations: f64 = samples.iter().filter(|(n, _, _)| n == "scimform_operations").map(|(_, _, v)| v).sum();
    #[expect(clippy::cast_precision_loss, reason = "a handful of operations")]
    let reported = report["operations"].as_array().unwrap().len() as f64;
    assert_eq!(operations, reported);
    let posts = samples
        .iter()
        .filter(|(n, labels, _)| n == "scimform_operations" && labels["method"] == "POST" && labels["status"] == "201")
        .map(|(_, _, v)| v)
        .sum::<f64>();
    #[expect(clippy::cast_precision_loss, reason = "a handful of operations")]
    let reported_posts = report["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["request"].as_str().unwrap().starts_with("POST") && o["status"] == 201)
        .count() as f64;
    assert_eq!(posts, reported_posts);
    let result = samples.iter().find(|(n, l, _)| n == "scimform_run_result" && l["result"] == "applied").unwrap().2;
    assert!((result - 1.0).abs() < f64::EPSILON);
    let succeeded_at = value("scimform_last_success_timestamp_seconds").unwrap();
    assert!(value("scimform_users_managed").is_some_and(|u| u > 0.0));

    // A run that fails keeps the time of the last success, and says it failed.
    drop(server);
    let failed_args = ["apply", "-f", "scimform.yaml", "--auto-approve", "--no-state", "--metrics-file", "m.prom"];
    let failed = run_async(dir.path(), &failed_args, &env).await;
    assert_eq!(failed.code, 1);
    let samples = prometheus_samples(&std::fs::read_to_string(dir.path().join("m.prom")).unwrap());
    let value = |name: &str| samples.iter().find(|(n, _, _)| n == name).map(|(_, _, v)| *v);
    assert_eq!(value("scimform_last_success_timestamp_seconds"), Some(succeeded_at));
    let error = samples.iter().find(|(n, l, _)| n == "scimform_run_result" && l["result"] == "error").unwrap().2;
    assert!((error - 1.0).abs() < f64::EPSILON);
}

/// `--color` over the terminal's say; `RUST_LOG` sets the log levels as `-v` does and more;
/// `-q` keeps errors only.
#[tokio::test]
async fn color_rust_log_and_quiet() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();
    let plan = ["plan", "-f", "scimform.yaml", "--no-state"];
    let always = run_async(dir.path(), &[&plan[..], &["--color", "always"]].concat(), &env).await;
    assert!(always.stdout.contains("\u{1b}["), "coloured although not a terminal");
    let never = run_async(dir.path(), &[&plan[..], &["--color", "never"]].concat(), &env).await;
    assert!(!never.stdout.contains("\u{1b}["));
    let logged = run_async(dir.path(), &plan, &[&env[..], &[("RUST_LOG", "info")]].concat()).await;
    assert!(logged.stderr.contains("GET /Users"), "request lines at info: {}", logged.stderr);
    let quiet = run_async(
        dir.path(),
        &[&plan[..], &["-q"]].concat(),
        &[&env[..], &[("SCIM_BASE_URL", "http://127.0.0.1:9/scim/v2")]].concat(),
    )
    .await;
    assert!(!quiet.stderr.contains(" WARN "), "errors only: {}", quiet.stderr);
    assert!(quiet.stderr.contains("error:"), "{}", quiet.stderr);
}
