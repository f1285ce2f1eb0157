use scimform::service::memory::{MemoryServer, MemoryStore};
use serde_json::json;

use crate::common::{run, run_async, workspace};

const PEOPLE: &str = "users:\n  - {id: '1', mail: ann.lee@x.example, title: Agent}\n";

fn manifest(token_ref: &str, base_url: &str) -> String {
    format!(
        r#"version: 1
sources:
  hr: {{ kind: file, path: people.yaml }}
target:
  kind: scim
  base_url: {base_url}
  auth:
    bearer_token: {token_ref}
users:
  source: hr
  external_id: "hr-{{{{ id }}}}"
  attributes:
    userName: "{{{{ mail | lower }}}}"
    title: title
"#
    )
}

#[test]
fn validate_reports_every_mistake_with_its_location() {
    let bad = r#"version: 1
sources:
  hr: { kind: file, path: people.yaml }
target:
  kind: scim
  base_url: https://scim.example/v2
  auth:
    bearer_token: ${env:SCIMFORM_TEST_UNSET_TOKEN}
users:
  source: hrr
  attributes:
    userName: "{{ mail | lower }}"
    titel: title
"#;
    let dir = workspace(&[("bad.yaml", bad)]);
    let result = run(dir.path(), &["validate", "-f", "bad.yaml"], &[]);
    assert_eq!(result.code, 1);
    assert_eq!(result.stdout, "");
    insta::assert_snapshot!(result.stderr, @r"
    error: invalid manifest `bad.yaml` (2 problems)

      --> bad.yaml:10:11 (at `users.source`)
       |
    10 |   source: hrr
       |           ^^^ source `hrr` is not declared under `sources`
       = hint: did you mean `hr`?

      --> bad.yaml:13:5 (at `users.attributes.titel`)
       |
    13 |     titel: title
       |     ^^^^^ unknown SCIM attribute `titel`
       = hint: did you mean `title`?

    warning: manifest `bad.yaml` has 1 warning

     --> bad.yaml:8:19 (at `target.auth.bearer_token`)
      |
    8 |     bearer_token: ${env:SCIMFORM_TEST_UNSET_TOKEN}
      |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ environment variable `SCIMFORM_TEST_UNSET_TOKEN` is not set
      = hint: set `SCIMFORM_TEST_UNSET_TOKEN` in the environment that runs scimform
    ");
}

#[test]
fn validate_names_unknown_keys_and_bad_templates() {
    let bad = r#"version: 1
sources:
  hr: { kind: file, pth: people.yaml }
target:
  kind: scim
  base_url: https://scim.example/v2
  auth: { bearer_token: t }
users:
  source: hr
  attributes:
    userName: "{{ mail | lowr }}"
    'emails[type eq "work".value': mail
"#;
    let dir = workspace(&[("bad.yaml", bad)]);
    let result = run(dir.path(), &["validate", "-f", "bad.yaml"], &[]);
    assert_eq!(result.code, 1);
    assert!(result.stderr.contains("bad.yaml:3:21 (at `sources.hr.pth`)"), "{}", result.stderr);
    assert!(result.stderr.contains("unknown key `pth`"), "{}", result.stderr);
    assert!(result.stderr.contains("did you mean `path`?"), "{}", result.stderr);
    assert!(result.stderr.contains("bad.yaml:11:26 (at `users.attributes.userName`)"), "{}", result.stderr);
    assert!(result.stderr.contains("unknown filter `lowr`"), "{}", result.stderr);
    assert!(result.stderr.contains("bad.yaml:12:27 (at `users.attributes"), "{}", result.stderr);
}

#[test]
fn validate_accepts_a_good_manifest() {
    let dir = workspace(&[("ok.yaml", &manifest("${env:TOKEN}", "https://scim.example/v2")), ("people.yaml", PEOPLE)]);
    let result = run(dir.path(), &["validate", "-f", "ok.yaml"], &[("TOKEN", "t")]);
    assert_eq!((result.code, result.stdout.as_str()), (0, "The manifest `ok.yaml` is valid.\n"), "{}", result.stderr);
}

#[test]
fn a_missing_manifest_is_one_clear_error() {
    let dir = workspace(&[]);
    let result = run(dir.path(), &["plan", "-f", "nope.yaml"], &[]);
    assert_eq!(result.code, 1);
    assert!(result.stderr.starts_with("error: cannot read manifest `nope.yaml`\n  Caused by:"), "{}", result.stderr);
}

fn store_with_ann(token: &str) -> MemoryStore {
    let mut store = MemoryStore::new(Some(token));
    store.insert_user(
        json!({"userName": "ann.lee@x.example", "title": "Trainee", "externalId": "hr-1", "active": true}),
    );
    store
}

#[tokio::test]
async fn plan_detailed_exitcode_follows_terraform() {
    let server = MemoryServer::start(store_with_ann("tok")).await.unwrap();
    let dir = workspace(&[("m.yaml", &manifest("${env:TOKEN}", server.base_url())), ("people.yaml", PEOPLE)]);
    let env = [("TOKEN", "tok")];
    let plain = run_async(dir.path(), &["plan", "-f", "m.yaml"], &env).await;
    assert_eq!(plain.code, 0, "{}", plain.all());
    let detailed = run_async(dir.path(), &["plan", "-f", "m.yaml", "--detailed-exitcode"], &env).await;
    assert_eq!(detailed.code, 2, "{}", detailed.all());
    assert!(detailed.stdout.contains(r#"~ title = "Trainee" -> "Agent""#), "{}", detailed.stdout);
    let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(applied.code, 0, "{}", applied.all());
    let after = run_async(dir.path(), &["plan", "-f", "m.yaml", "--detailed-exitcode"], &env).await;
    assert_eq!((after.code, after.stdout.as_str()), (0, "No changes. The target matches the manifest.\n"));
    assert_eq!(server.writes(), 1);
}

#[tokio::test]
async fn apply_without_a_terminal_asks_for_auto_approve_and_writes_nothing() {
    let server = MemoryServer::start(store_with_ann("tok")).await.unwrap();
    let dir = workspace(&[("m.yaml", &manifest("${env:TOKEN}", server.base_url())), ("people.yaml", PEOPLE)]);
    let result = run_async(dir.path(), &["apply", "-f", "m.yaml"], &[("TOKEN", "tok")]).await;
    assert_eq!(result.code, 1);
    assert!(result.stdout.contains("1 to update"), "{}", result.stdout);
    assert!(result.stderr.contains("there is no terminal to ask on; pass `--auto-approve`"), "{}", result.stderr);
    assert_eq!(server.writes(), 0);
}

#[tokio::test]
async fn secrets_never_appear_in_any_output() {
    const SECRET: &str = "tok-3f9a1c77-never-print-me";
    let server = MemoryServer::start(store_with_ann(SECRET)).await.unwrap();
    let good = manifest("${env:SCIMFORM_SECRET}", server.base_url());
    // The same secret, refused by a server that expects another token.
    let other = MemoryServer::start(store_with_ann("another-token")).await.unwrap();
    let refused = manifest("${env:SCIMFORM_SECRET}", other.base_url());
    // And a manifest with problems elsewhere while the secret is set.
    let broken = good.replace("title: title", "title: '{{ nope'").replace("kind: scim", "kind: scim\n  concurrency: 0");
    let dir = workspace(&[
        ("good.yaml", &good),
        ("refused.yaml", &refused),
        ("broken.yaml", &broken),
        ("people.yaml", PEOPLE),
    ]);
    let env = [("SCIMFORM_SECRET", SECRET)];
    let runs = [
        run_async(dir.path(), &["validate", "-f", "good.yaml"], &env).await,
        run_async(dir.path(), &["plan", "-v", "-f", "good.yaml"], &env).await,
        run_async(dir.path(), &["apply", "-f", "good.yaml", "--auto-approve"], &env).await,
        run_async(dir.path(), &["plan", "-f", "refused.yaml"], &env).await,
        run_async(dir.path(), &["validate", "-f", "broken.yaml"], &env).await,
        run_async(dir.path(), &["plan", "-f", "good.yaml", "--out", "plan.json", "--format", "json"], &env).await,
        run_async(dir.path(), &["apply", "plan.json", "--report", "report.json"], &env).await,
        run_async(dir.path(), &["explain", "-f", "good.yaml", "ann.lee@x.example"], &env).await,
    ];
    let codes: Vec<i32> = runs.iter().map(|r| r.code).collect();
    assert_eq!(codes, [0, 0, 0, 1, 1, 0, 0, 0], "{runs:#?}");
    for file in ["plan.json", "report.json"] {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert!(!text.contains(SECRET), "the secret leaked into {file}:\n{text}");
    }
    assert!(runs[3].stderr.contains("HTTP 401"), "{}", runs[3].stderr);
    // `-v` logs every request line and status, and nothing else.
    assert!(runs[1].stderr.contains("GET /Users -> 200"), "{}", runs[1].stderr);
    for run in &runs {
        assert!(!run.all().contains(SECRET), "the secret leaked:\n{}", run.all());
    }
}

#[test]
fn demo_runs_the_whole_loop() {
    let result = run(&crate::common::repo_root(), &["demo"], &[]);
    assert_eq!(result.code, 0, "{}", result.all());
    let out = &result.stdout;
    assert!(
        out.contains("Plan: 1 to create, 1 to update, 1 to adopt, 2 to disable, 0 to delete, 1 group to change."),
        "{out}"
    );
    let last_run = out.rsplit_once("# the next scheduled run").map(|(_, tail)| tail).unwrap_or_default();
    assert!(last_run.contains("No changes."), "{out}");
    assert!(last_run.contains("The SCIM server received 0 write(s) during the scheduled run."), "{out}");
}

/// Nine levels of nine aliases: 9^9 nodes if expanded, from about 400 bytes.
fn alias_bomb(key: &str) -> String {
    use std::fmt::Write;
    let mut text = format!("{key}:\n  a: &a [x, x, x, x, x, x, x, x, x]\n");
    for (level, previous) in
        ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        let _ = writeln!(text, "  {level}: &{level} [{}]", vec![format!("*{previous}"); 9].join(", "));
    }
    text
}

/// An alias bomb in a manifest and in a people file is a located error within seconds; the
/// process's memory stays bounded (without the bound it grows past 12 GB and is killed).
#[test]
fn alias_bombs_are_located_errors_not_out_of_memory() {
    let good = manifest("t", "http://127.0.0.1:9");
    let bomb = format!("{good}{}", alias_bomb("extra"));
    let people = format!("users: []\n{}", alias_bomb("groups"));
    let dir = workspace(&[("bomb.yaml", &bomb), ("ok.yaml", &good), ("people.yaml", &people)]);
    let started = std::time::Instant::now();
    let result = run(dir.path(), &["validate", "-f", "bomb.yaml"], &[]);
    assert_eq!(result.code, 1, "{}", result.all());
    assert!(result.stderr.contains("bomb.yaml:21:"), "{}", result.stderr);
    assert!(result.stderr.contains("an alias bomb?"), "{}", result.stderr);
    let result = run(dir.path(), &["plan", "-f", "ok.yaml", "--no-state"], &[]);
    assert_eq!(result.code, 1, "{}", result.all());
    assert!(result.stderr.contains("`people.yaml` is not a valid YAML people file: line 8:"), "{}", result.stderr);
    assert!(result.stderr.contains("an alias bomb?"), "{}", result.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}

/// A manifest or a people file saved in another encoding (Latin-1 here) names the line.
#[test]
fn files_that_are_not_utf8_name_the_line() {
    let dir = workspace(&[("ok.yaml", &manifest("t", "http://127.0.0.1:9"))]);
    let latin1 = |text: &str| text.chars().map(|c| u8::try_from(u32::from(c)).unwrap()).collect::<Vec<u8>>();
    std::fs::write(
        dir.path().join("bad.yaml"),
        latin1(&manifest("t", "http://127.0.0.1:9").replace("title: title", "title: {constant: Gérant}")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("people.yaml"),
        latin1("users:\n  - {id: '1', mail: a@x.example}\n  - {id: '2', mail: b@x.example, title: Gérant}\n"),
    )
    .unwrap();
    let result = run(dir.path(), &["validate", "-f", "bad.yaml"], &[]);
    assert_eq!(result.code, 1, "{}", result.all());
    assert!(
        result.stderr.contains("cannot read manifest `bad.yaml`\n  Caused by: line 14, column 24 is not UTF-8"),
        "{}",
        result.stderr
    );
    let result = run(dir.path(), &["plan", "-f", "ok.yaml", "--no-state"], &[]);
    assert_eq!(result.code, 1, "{}", result.all());
    assert!(
        result.stderr.contains("`people.yaml` is not a valid YAML people file: line 3, column 42 is not UTF-8"),
        "{}",
        result.stderr
    );
}

/// `completions` prints a script for each shell clap_complete knows of ours.
#[test]
fn completions_for_four_shells() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef scimform"),
        ("fish", "complete -c scimform"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let printed = crate::common::run(dir.path(), &["completions", shell], &[]);
        assert_eq!(printed.code, 0, "{shell}: {}", printed.all());
        assert!(printed.stdout.contains(marker), "{shell}: {}", &printed.stdout[..printed.stdout.len().min(300)]);
        assert!(printed.stdout.contains("apply"), "{shell} completes the subcommands");
    }
}

/// `--version` names the commit and the build date; `-V` stays short.
#[test]
fn version_names_the_commit_and_the_build_date() {
    let dir = tempfile::tempdir().unwrap();
    let long = crate::common::run(dir.path(), &["--version"], &[]);
    assert_eq!(long.code, 0);
    let line = long.stdout.trim();
    let inside =
        line.strip_prefix(concat!("scimform ", env!("CARGO_PKG_VERSION"), " (")).and_then(|r| r.strip_suffix(')'));
    let (commit, date) = inside.and_then(|i| i.split_once(' ')).unwrap_or_else(|| panic!("{line}"));
    assert!(commit == "unknown" || (commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit())), "{line}");
    assert!(date.parse::<jiff::civil::Date>().is_ok(), "{line}");
    let short = crate::common::run(dir.path(), &["-V"], &[]);
    assert_eq!(short.stdout.trim(), concat!("scimform ", env!("CARGO_PKG_VERSION")));
}

/// `demo --serve` keeps the seeded server running and says how to reach it; a manifest of one's
/// own plans against it; Ctrl-C stops it.
#[tokio::test]
async fn demo_serve_keeps_the_server_for_a_manifest_of_ones_own() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scimform"))
        .args(["demo", "--serve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (url, token) = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut url = None;
        loop {
            let line = lines.next().unwrap().unwrap();
            if let Some(u) = line.trim().strip_prefix("export SCIM_BASE_URL=") {
                url = Some(u.to_owned());
            }
            if let Some(t) = line.trim().strip_prefix("export SCIM_TOKEN=") {
                return (url.unwrap(), t.to_owned());
            }
        }
    })
    .await
    .unwrap();
    let dir = crate::common::quickstart();
    let planned = crate::common::run_async(
        dir.path(),
        &["plan", "-f", "scimform.yaml", "--no-state"],
        &[("SCIM_BASE_URL", &url), ("SCIM_TOKEN", &token)],
    )
    .await;
    assert_eq!(planned.code, 0, "{}", planned.all());
    assert!(planned.stdout.contains("to create"), "{}", planned.stdout);
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(130));
}

/// `init` writes a starter manifest for each source and target kind that `validate` accepts,
/// and never overwrites a file.
#[test]
fn init_writes_a_valid_starter_for_each_source_and_target() {
    let env = [
        ("AD_BIND_PASSWORD", "x"),
        ("GRAPH_TENANT_ID", "x"),
        ("GRAPH_CLIENT_ID", "x"),
        ("GRAPH_CLIENT_SECRET", "x"),
        ("GENESYS_CLIENT_ID", "x"),
        ("GENESYS_CLIENT_SECRET", "x"),
        ("SCIM_BASE_URL", "https://scim.example/v2"),
        ("SCIM_TOKEN", "x"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for source in ["ldap", "graph", "file"] {
        for target in ["genesys", "generic"] {
            let file = format!("{source}-{target}.yaml");
            let written =
                crate::common::run(dir.path(), &["init", "--source", source, "--target", target, "-f", &file], &[]);
            assert_eq!(written.code, 0, "{}", written.all());
            let checked = crate::common::run(dir.path(), &["validate", "-f", &file], &env);
            assert_eq!(checked.code, 0, "{source} -> {target}:\n{}", checked.all());
        }
    }
    let again = crate::common::run(
        dir.path(),
        &["init", "--source", "file", "--target", "generic", "-f", "file-generic.yaml"],
        &[],
    );
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("init never overwrites a file"), "{}", again.stderr);
}

/// `man` prints the man page.
#[test]
fn man_prints_a_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let page = crate::common::run(dir.path(), &["man"], &[]);
    assert_eq!(page.code, 0);
    assert!(
        page.stdout.starts_with(".ie \\n(.g .ds Aq") || page.stdout.contains(".TH scimform"),
        "{}",
        &page.stdout[..200.min(page.stdout.len())]
    );
    assert!(page.stdout.contains("apply"));
}

/// Every subcommand's help shows an example, and each example is a real command line.
#[test]
fn every_subcommand_help_shows_a_real_example() {
    use clap::Parser;
    let dir = tempfile::tempdir().unwrap();
    for command in ["validate", "plan", "apply", "explain", "show", "completions", "man", "init", "schema", "demo"] {
        let help = crate::common::run(dir.path(), &[command, "--help"], &[]);
        assert_eq!(help.code, 0, "{command}");
        let examples: Vec<&str> = help
            .stdout
            .lines()
            .flat_map(|l| l.split('`'))
            .map(str::trim)
            .filter(|l| l.starts_with("scimform ") && !l.contains('<'))
            .collect();
        assert!(!examples.is_empty(), "`{command} --help` shows no example:\n{}", help.stdout);
        // `-v` only where it shows something: the commands that talk to services.
        let talks = ["plan", "apply", "explain", "demo"].contains(&command);
        assert_eq!(help.stdout.contains("--verbose"), talks, "{command}: -v where it acts");
        for example in examples {
            let words: Vec<&str> = example.split_whitespace().take_while(|w| !matches!(*w, ">" | "|")).collect();
            let parsed = scimform::cli::Cli::try_parse_from(&words);
            assert!(parsed.is_ok(), "`{example}` in `{command} --help` does not parse: {:?}", parsed.err());
        }
    }
}

/// `--log-format json`: every stderr line is one JSON object with a timestamp, a level and a
/// message; the request lines carry their fields; no secret and no person's attribute value
/// (names, titles) reaches stderr, while stdout keeps the plan.
#[tokio::test]
async fn json_logs_are_one_object_a_line_without_secrets_or_names() {
    const SECRET: &str = "tok-json-7d1e-never-print-me";
    let people = "users:\n  - {id: '1', mail: ann.lee@x.example, title: Agent}\n  - {id: '3', mail: Zebulon.Quixote@x.example, title: Astronaut-Q7}\n";
    let server = MemoryServer::start(store_with_ann(SECRET)).await.unwrap();
    let other = MemoryServer::start(store_with_ann("another-token")).await.unwrap();
    let dir = workspace(&[
        ("m.yaml", &manifest("${env:SCIMFORM_SECRET}", server.base_url())),
        ("refused.yaml", &manifest("${env:SCIMFORM_SECRET}", other.base_url())),
        ("people.yaml", people),
    ]);
    let env = [("SCIMFORM_SECRET", SECRET)];
    let json = ["--log-format", "json"];
    let plan = run_async(dir.path(), &[&["plan", "-v", "-f", "m.yaml"][..], &json].concat(), &env).await;
    let apply =
        run_async(dir.path(), &[&["apply", "-v", "-f", "m.yaml", "--auto-approve"][..], &json].concat(), &env).await;
    let refused = run_async(dir.path(), &[&["plan", "-f", "refused.yaml"][..], &json].concat(), &env).await;
    let from_env = run_async(dir.path(), &["plan", "-f", "m.yaml"], &[env[0], ("SCIMFORM_LOG_FORMAT", "json")]).await;
    let codes = [plan.code, apply.code, refused.code, from_env.code];
    assert_eq!(codes, [0, 0, 1, 0], "{}\n{}\n{}", plan.stderr, apply.stderr, from_env.stderr);
    assert!(
        plan.stdout.contains("zebulon.quixote@x.example") && plan.stdout.contains("Astronaut-Q7"),
        "stdout keeps the plan"
    );

    let mut objects = Vec::new();
    for run in [&plan, &apply, &refused, &from_env] {
        for line in run.stderr.lines() {
            let object: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{}", run.stderr));
            assert!(object["timestamp"].as_str().is_some_and(|t| t.len() >= 20), "{line}");
            assert!(["INFO", "WARN", "ERROR"].contains(&object["level"].as_str().unwrap_or_default()), "{line}");
            assert!(object["message"].is_string(), "{line}");
            for leaked in [SECRET, "ebulon", "Quixote", "quixote", "Astronaut", "ann.lee", "Agent"] {
                assert!(!line.contains(leaked), "`{leaked}` reached a log line: {line}");
            }
            objects.push(object);
        }
    }
    let request = objects.iter().find(|o| o["method"] == "PATCH").expect("a PATCH request line");
    assert_eq!(request["path"], "/Users/{id}", "{request}");
    assert_eq!((request["status"].as_u64(), request["attempt"].as_u64()), (Some(200), Some(1)), "{request}");
    assert!(request["duration_ms"].is_u64(), "{request}");
    let operations: Vec<&serde_json::Value> = objects.iter().filter(|o| o["message"] == "operation").collect();
    assert_eq!(operations.len(), 2, "one create, one update: {operations:?}");
    assert!(operations.iter().all(|o| o["resource"] == "user" && o["result"] == "applied" && o["id"].is_string()));
    assert!(objects.iter().any(|o| o["message"] == "apply complete" && o["applied"] == 2));
    let error = refused.stderr.lines().last().unwrap();
    let error: serde_json::Value = serde_json::from_str(error).unwrap();
    assert_eq!(error["level"], "ERROR");
    assert!(error["message"].as_str().unwrap().contains("HTTP 401"), "{error}");
    assert!(error["hint"].is_string(), "{error}");
}
