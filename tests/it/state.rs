//! The state file: a scheduled run plans against what the last run left, lists nothing, writes
//! only what changed with the remembered version as `If-Match`, reads again and re-plans a user
//! edited in the target since, and reads in full when it cannot know (`--refresh`, another
//! manifest, after a retry). `--refresh-only` reports drift.

use scimform::commands::demo::seeded_store;
use scimform::service::memory::MemoryServer;
use serde_json::json;

use crate::common::{quickstart, run_async};

#[tokio::test]
async fn a_state_file_replaces_the_target_listing_and_stays_exact() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();
    let apply = ["apply", "-f", "scimform.yaml", "--auto-approve", "--state", "state.db"];

    let first = run_async(dir.path(), &apply, &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(!first.stderr.contains("Planned against the state"), "no state yet: {}", first.stderr);
    assert!(first.stderr.contains("GET 200"), "the first run lists the target: {}", first.stderr);

    // Nothing to do: no request at all, not even a listing.
    server.reset_writes();
    let idle = run_async(dir.path(), &apply, &env).await;
    assert_eq!(
        (idle.code, idle.stdout.as_str()),
        (0, "No changes. The target matches the manifest.\n"),
        "{}",
        idle.all()
    );
    assert!(idle.stderr.contains("Planned against the state"), "{}", idle.stderr);
    assert_eq!(server.writes(), 0);

    // Nothing changed since that run: its plan stands, known from the state's head, the file's
    // hash and one `count=0`.
    let settled = run_async(dir.path(), &[&apply[..], &["-v"]].concat(), &env).await;
    assert_eq!(
        (settled.code, settled.stdout.as_str()),
        (0, "No changes. The target matches the manifest.\n"),
        "{}",
        settled.all()
    );
    assert!(settled.stderr.contains("Nothing changed since the last run, whose plan stands"), "{}", settled.stderr);
    let requests: Vec<&str> = settled.stderr.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(requests, [" INFO GET /Users -> 200"], "{}", settled.stderr);

    // One title changes in the source: one PATCH, carrying the version the first run left.
    let people = dir.path().join("people.yaml");
    let text = std::fs::read_to_string(&people).unwrap();
    std::fs::write(&people, text.replacen("title: Analyst", "title: Senior Analyst", 1)).unwrap();
    let one = run_async(dir.path(), &[&apply[..], &["-v"]].concat(), &env).await;
    assert_eq!(one.code, 0, "{}", one.all());
    assert!(one.stderr.contains("Requests: 2 GET 200, 1 PATCH 200;"), "{}", one.stderr);
    assert!(one.stderr.contains("GET /ServiceProviderConfig -> 200"), "the capabilities: {}", one.stderr);
    assert_eq!(one.stderr.matches("GET /Users -> 200").count(), 1, "no listing, only the count: {}", one.stderr);
    assert_eq!(server.user("alan.turing@corp.example").unwrap()["title"], "Senior Analyst");

    // A hand edit in the target, then a source change to the same user: the remembered version
    // is stale, the write is refused (412), nothing is overwritten blindly; the user is read
    // again and planned again against what the target holds now (the hand edit shows in the new
    // plan), and only then written, with the new version.
    let alan = server.user("alan.turing@corp.example").unwrap()["id"].as_str().unwrap().to_owned();
    server.edit_user(&alan, |u| u["title"] = json!("Edited By Hand"));
    let text = std::fs::read_to_string(&people).unwrap();
    std::fs::write(&people, text.replacen("department: Research", "department: Labs", 1)).unwrap();
    server.reset_writes();
    let stale = run_async(dir.path(), &apply, &env).await;
    assert_eq!(stale.code, 0, "{}", stale.all());
    assert!(stale.stderr.contains("changed in the target since it was read"), "{}", stale.stderr);
    assert!(stale.stderr.contains("1 resource(s) changed in the target since they were read"), "{}", stale.stderr);
    assert!(
        stale.stdout.contains("~ title") && stale.stdout.contains(r#""Edited By Hand" -> "Senior Analyst""#),
        "{}",
        stale.stdout
    );
    let writes: Vec<String> = server.recorded_writes().iter().map(|w| format!("{} {}", w.method, w.path)).collect();
    assert_eq!(writes, [format!("PATCH /Users/{alan}"), format!("PATCH /Users/{alan}")], "one refused, one sent");
    let user = server.user("alan.turing@corp.example").unwrap();
    assert_eq!(
        (
            user["title"].clone(),
            user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"].clone()
        ),
        (json!("Senior Analyst"), json!("Labs"))
    );

    // After a retry the state file forgets the target: the next run reads it in full.
    let again = run_async(dir.path(), &apply, &env).await;
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (0, "No changes. The target matches the manifest.\n"),
        "{}",
        again.all()
    );
    assert!(!again.stderr.contains("Planned against the state"), "{}", again.stderr);

    // `--refresh` reads in full even with a state file; another manifest does too.
    let refreshed = run_async(dir.path(), &[&apply[..], &["--refresh", "-v"]].concat(), &env).await;
    assert!(
        !refreshed.stderr.contains("Planned against the state") && refreshed.stderr.contains("GET /Users -> 200"),
        "{}",
        refreshed.stderr
    );
    // That run changed nothing after its full read: its plan stands for the next.
    let cached = run_async(dir.path(), &apply, &env).await;
    assert!(cached.stderr.contains("whose plan stands"), "{}", cached.stderr);
    let manifest = dir.path().join("scimform.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}# changed\n")).unwrap();
    let changed = run_async(dir.path(), &apply, &env).await;
    assert!(
        !changed.stderr.contains("Planned against the state") && !changed.stderr.contains("plan stands"),
        "{}",
        changed.stderr
    );
    assert_eq!(changed.stdout, "No changes. The target matches the manifest.\n");
}

/// A run that writes and stops before its state is saved (simulated by putting the previous
/// state file back): the rerun's `count=0` check finds one user more than the state remembers,
/// lists the target, and creates nothing twice.
#[tokio::test]
async fn a_crash_between_a_write_and_the_state_commit_converges_without_duplicates() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();
    let apply = ["apply", "-f", "scimform.yaml", "--auto-approve", "--state", "state.db"];
    // Everything but one new person converges and is remembered.
    let people = dir.path().join("people.yaml");
    let full = std::fs::read_to_string(&people).unwrap();
    let newcomer = "  - id: \"2001\"\n    mail: grace.new@corp.example\n    givenName: Grace\n    sn: New\n    title: Agent\n    department: Support\n";
    let first = run_async(dir.path(), &apply, &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let before_crash = std::fs::read(dir.path().join("state.db")).unwrap();

    // The newcomer is created, then the run "crashes": its state never reaches the file.
    std::fs::write(&people, full.replacen("users:\n", &format!("users:\n{newcomer}"), 1)).unwrap();
    let created = run_async(dir.path(), &apply, &env).await;
    assert_eq!(created.code, 0, "{}", created.all());
    assert!(created.stdout.contains("Plan: 1 to create"), "{}", created.stdout);
    std::fs::write(dir.path().join("state.db"), before_crash).unwrap();

    server.reset_writes();
    let rerun = run_async(dir.path(), &apply, &env).await;
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    assert!(
        rerun.stderr.contains("Read the target in full: it holds 9 user(s) where the state remembers 8"),
        "{}",
        rerun.stderr
    );
    assert!(rerun.stdout.starts_with("No changes."), "{}", rerun.stdout);
    let named = server.users().iter().filter(|u| u["userName"] == "grace.new@corp.example").count();
    assert_eq!(named, 1, "no duplicate");
    assert_eq!(server.writes(), 0, "the user as found needs nothing");

    let settled = run_async(dir.path(), &apply, &env).await;
    assert_eq!(
        (settled.code, settled.stdout.as_str()),
        (0, "No changes. The target matches the manifest.\n"),
        "{}",
        settled.all()
    );
}

/// `--refresh-only` reads the target in full and reports what was edited there since the last
/// run, writing nothing to the target; `apply --refresh-only` makes the state file remember it,
/// so the next cached plan sees the edit.
#[tokio::test]
async fn refresh_only_reports_drift_and_writes_nothing() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();
    let state = ["-f", "scimform.yaml", "--state", "state.db"];
    let first = run_async(dir.path(), &[&["apply", "--auto-approve"], &state[..]].concat(), &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let none = run_async(dir.path(), &[&["plan", "--refresh-only"], &state[..]].concat(), &env).await;
    assert_eq!(
        (none.code, none.stdout.as_str()),
        (0, "No drift: the target is as the last run left it.\n"),
        "{}",
        none.all()
    );

    let alan = server.user("alan.turing@corp.example").unwrap()["id"].as_str().unwrap().to_owned();
    server.edit_user(&alan, |u| u["title"] = json!("By Hand"));
    server.reset_writes();
    let drift =
        run_async(dir.path(), &[&["plan", "--refresh-only", "--detailed-exitcode"], &state[..]].concat(), &env).await;
    assert_eq!(drift.code, 2, "{}", drift.all());
    assert!(
        drift.stdout.contains(r#"~ user "alan.turing@corp.example": title = "Analyst" -> "By Hand""#),
        "{}",
        drift.stdout
    );

    // Still cached and unaware: the plan sees no change until the state file learns the edit.
    let unaware = run_async(dir.path(), &[&["plan"], &state[..]].concat(), &env).await;
    assert!(unaware.stdout.starts_with("No changes."), "{}", unaware.stdout);
    let learned = run_async(dir.path(), &[&["apply", "--refresh-only"], &state[..]].concat(), &env).await;
    assert_eq!(learned.code, 0, "{}", learned.all());
    assert!(learned.stderr.contains("nothing was written to the target"), "{}", learned.stderr);
    let aware = run_async(dir.path(), &[&["plan"], &state[..]].concat(), &env).await;
    assert!(aware.stderr.contains("Planned against the state"), "{}", aware.stderr);
    assert!(aware.stdout.contains("~ title") && aware.stdout.contains(r#""By Hand" -> "Analyst""#), "{}", aware.stdout);
    assert_eq!(server.writes(), 0, "refresh-only and plan never write");

    // A plan saved for review is made against the target as it is, not as remembered; applied,
    // it runs as it is and the state forgets the target, so the next run reads it in full.
    let saved = run_async(dir.path(), &[&["plan", "--out", "plan.json"], &state[..]].concat(), &env).await;
    assert_eq!(saved.code, 0, "{}", saved.all());
    assert!(!saved.stderr.contains("Planned against the state"), "{}", saved.stderr);
    let applied = run_async(dir.path(), &["apply", "plan.json", "--state", "state.db"], &env).await;
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(server.writes(), 1, "the restored title");
    let next = run_async(dir.path(), &[&["plan"], &state[..]].concat(), &env).await;
    assert!(!next.stderr.contains("Planned against the state"), "read in full: {}", next.stderr);
    assert!(next.stdout.starts_with("No changes."), "{}", next.stdout);
}

/// The state is on by default, a SQLite file beside the manifest, and belongs to the manifest
/// and where it points: the same manifest against another target starts afresh; `--no-state`
/// keeps none.
#[tokio::test]
async fn the_default_state_sits_beside_the_manifest_and_belongs_to_its_target() {
    let first = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", first.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();
    let state = dir.path().join("scimform.yaml.state");
    // A plan reads the state and never writes it: none is made by a plan.
    let planned = run_async(dir.path(), &["plan", "-f", "scimform.yaml"], &env).await;
    assert_eq!(planned.code, 0, "{}", planned.all());
    assert!(!state.exists(), "a plan makes no state");
    let apply = ["apply", "-f", "scimform.yaml", "--auto-approve"];
    let filled = run_async(dir.path(), &apply, &env).await;
    assert_eq!(filled.code, 0, "{}", filled.all());
    assert!(state.exists(), "the state beside the manifest");
    let idle = run_async(dir.path(), &apply, &env).await;
    assert!(idle.stderr.contains("Planned against the state"), "{}", idle.stderr);
    // Nor does a plan change it, even when the source changed.
    let saved = std::fs::read(&state).unwrap();
    let people = dir.path().join("people.yaml");
    let text = std::fs::read_to_string(&people).unwrap();
    std::fs::write(&people, text.replacen("title: Analyst", "title: Senior Analyst", 1)).unwrap();
    let changed = run_async(dir.path(), &["plan", "-f", "scimform.yaml"], &env).await;
    assert!(changed.stderr.contains("Planned against the state"), "{}", changed.stderr);
    assert!(changed.stdout.contains("Plan: 0 to create, 1 to update"), "{}", changed.stdout);
    assert_eq!(std::fs::read(&state).unwrap(), saved, "a plan leaves the state as it was");
    std::fs::write(&people, text).unwrap();

    // Another target (the same manifest, another SCIM_BASE_URL): nothing remembered applies.
    let second = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", second.base_url()), ("SCIM_TOKEN", "demo-token")];
    let elsewhere = run_async(dir.path(), &apply, &env).await;
    assert_eq!(elsewhere.code, 0, "{}", elsewhere.all());
    assert!(!elsewhere.stderr.contains("Planned against the state"), "{}", elsewhere.stderr);
    assert!(elsewhere.stdout.contains("Plan: 1 to create"), "the second target is converged: {}", elsewhere.stdout);

    // The default state cannot be used (here: a directory stands where the file would be): a
    // warning and a run without state. The same state asked for by name: an error.
    std::fs::copy(dir.path().join("scimform.yaml"), dir.path().join("other.yaml")).unwrap();
    std::fs::create_dir(dir.path().join("other.yaml.state")).unwrap();
    let fallback = run_async(dir.path(), &["plan", "-f", "other.yaml"], &env).await;
    assert_eq!(fallback.code, 0, "{}", fallback.all());
    assert!(
        fallback.stderr.contains("Warning: running without state: cannot use the state file `other.yaml.state`"),
        "{}",
        fallback.stderr
    );
    let named = run_async(dir.path(), &["plan", "-f", "other.yaml", "--state", "other.yaml.state"], &env).await;
    assert_eq!(named.code, 1, "{}", named.all());
    assert!(named.stderr.contains("cannot use the state file `other.yaml.state`"), "{}", named.stderr);

    // `--no-state` wins over a state named in the environment (a CI-wide SCIMFORM_STATE).
    let none = ["apply", "-f", "scimform.yaml", "--auto-approve", "--no-state"];
    let env = [env[0], env[1], ("SCIMFORM_STATE", "scimform.yaml.state")];
    let stateless = run_async(dir.path(), &none, &env).await;
    assert_eq!(stateless.code, 0, "{}", stateless.all());
    assert!(!stateless.stderr.contains("Planned against the state"), "{}", stateless.stderr);
}

/// A damaged default state (truncated by a full disk, overwritten) is moved aside once, named
/// in a warning, and a fresh one started: the run after it plans against the state again, no
/// warning. A damaged state named with `--state` is an error with the way out.
#[tokio::test]
async fn a_damaged_default_state_is_moved_aside_once() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = quickstart();
    let apply = ["apply", "-f", "scimform.yaml", "--auto-approve"];
    let first = run_async(dir.path(), &apply, &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let state = dir.path().join("scimform.yaml.state");
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 3]).unwrap();

    let damaged = run_async(dir.path(), &apply, &env).await;
    assert_eq!(damaged.code, 0, "{}", damaged.all());
    assert!(
        damaged.stderr.contains("Warning: the state file `scimform.yaml.state` cannot be read"),
        "{}",
        damaged.stderr
    );
    let aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("scimform.yaml.state.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(damaged.stderr.contains(&format!("moved it aside to `{}`", aside[0])), "{}", damaged.stderr);

    let next = run_async(dir.path(), &apply, &env).await;
    assert_eq!(next.code, 0, "{}", next.all());
    assert!(!next.stderr.contains("Warning"), "{}", next.stderr);
    assert!(next.stderr.contains("Nothing changed since the last run, whose plan stands"), "{}", next.stderr);

    std::fs::write(dir.path().join("named.db"), b"not a database at all, just text").unwrap();
    let named = run_async(dir.path(), &[&apply[..], &["--state", "named.db"]].concat(), &env).await;
    assert_eq!(named.code, 1, "{}", named.all());
    assert!(named.stderr.contains("move it aside (`mv named.db named.db.corrupt`)"), "{}", named.stderr);
}

/// `state list` and `state show` read what the state remembers, as `plan` reads it.
#[tokio::test]
async fn state_list_and_show_read_what_the_state_remembers() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = crate::common::quickstart();
    let nothing = run_async(dir.path(), &["state", "list", "-f", "scimform.yaml"], &env).await;
    assert_eq!(nothing.code, 1);
    assert!(nothing.stderr.contains("the state holds nothing"), "{}", nothing.stderr);
    let applied = run_async(dir.path(), &["apply", "-f", "scimform.yaml", "--auto-approve"], &env).await;
    assert_eq!(applied.code, 0, "{}", applied.all());
    let listed = run_async(dir.path(), &["state", "list", "-f", "scimform.yaml"], &env).await;
    assert_eq!(listed.code, 0, "{}", listed.all());
    assert!(listed.stdout.contains("user:ada.lovelace@corp.example (id "), "{}", listed.stdout);
    assert!(listed.stdout.contains("group:Support_Tier1 (id "), "{}", listed.stdout);
    let shown =
        run_async(dir.path(), &["state", "show", "-f", "scimform.yaml", "user:Ada.Lovelace@corp.example"], &env).await;
    assert_eq!(shown.code, 0, "{}", shown.all());
    let user: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(user["userName"], "ada.lovelace@corp.example");
    let missing = run_async(dir.path(), &["state", "show", "-f", "scimform.yaml", "group:Nope"], &env).await;
    assert!(missing.stderr.contains("the state remembers no group `Nope`"), "{}", missing.stderr);
}

/// `state forget user:KEY` takes a user out of scimform's hands, as `terraform state rm` does:
/// its attributes, its memberships and its leaving are not acted on, the plan says so, and
/// `--undo` manages it again; `state forget group:NAME` leaves a group's members as they are.
#[tokio::test]
async fn state_forget_leaves_a_user_or_a_group_alone_until_undone() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let dir = crate::common::quickstart();
    let apply = || run_async(dir.path(), &["apply", "-f", "scimform.yaml", "--auto-approve"], &env);
    let state = |args: &'static [&'static str]| {
        let all: Vec<&str> = ["state"].iter().chain(args).copied().collect();
        let dir = dir.path().to_path_buf();
        async move { run_async(&dir, &all, &env).await }
    };
    let before_any = state(&["forget", "-f", "scimform.yaml", "user:ada.lovelace@corp.example"]).await;
    assert_eq!(before_any.code, 1);
    assert!(before_any.stderr.contains("there is no state for `scimform.yaml` yet"), "{}", before_any.stderr);
    assert_eq!(apply().await.code, 0);
    let ada = server.user("ada.lovelace@corp.example").unwrap()["id"].as_str().unwrap().to_owned();

    let forgot = state(&["forget", "-f", "scimform.yaml", "user:Ada.Lovelace@corp.example"]).await;
    assert_eq!(forgot.code, 0, "{}", forgot.all());
    assert!(
        forgot.stdout.contains(&format!("leaves user `ada.lovelace@corp.example` (id {ada})")),
        "{}",
        forgot.stdout
    );
    let listed = state(&["list", "-f", "scimform.yaml"]).await;
    assert!(
        listed
            .stdout
            .contains(&format!("forgotten (1), left as they are:\n  user:ada.lovelace@corp.example (id {ada})")),
        "{}",
        listed.stdout
    );

    // Ada's title changes, she leaves the group, then HR drops her: none of it is acted on.
    let people = std::fs::read_to_string(dir.path().join("people.yaml")).unwrap();
    let changed = people
        .replace(
            "title: Support Engineer\n    department: Support\n  - id: \"1002\"",
            "title: Head of Support\n    department: Support\n  - id: \"1002\"",
        )
        .replace("members: [\"1001\", \"1002\", \"1004\"]", "members: [\"1002\", \"1004\"]");
    assert_ne!(changed, people);
    std::fs::write(dir.path().join("people.yaml"), &changed).unwrap();
    server.reset_writes();
    let left_alone = apply().await;
    assert_eq!(left_alone.code, 0, "{}", left_alone.all());
    assert!(
        left_alone
            .stderr
            .contains("user `ada.lovelace@corp.example` is forgotten (`scimform state forget`): left as it is"),
        "{}",
        left_alone.all()
    );
    assert!(
        server
            .recorded_writes()
            .iter()
            .all(|w| !w.path.contains(&ada) && !w.body.as_ref().is_some_and(|b| b.to_string().contains(&ada))),
        "{:?}",
        server.recorded_writes()
    );
    assert!(server.group_members("Support_Tier1").contains(&ada), "her membership stays");
    let gone = changed.replace(
        "  - id: \"1001\"\n    mail: Ada.Lovelace@corp.example",
        "  - id: \"9001\"\n    mail: someone.else@corp.example",
    );
    std::fs::write(dir.path().join("people.yaml"), &gone).unwrap();
    server.reset_writes();
    assert_eq!(apply().await.code, 0);
    assert!(
        server.recorded_writes().iter().all(|w| !w.path.contains(&ada)),
        "not disabled: {:?}",
        server.recorded_writes()
    );
    assert_eq!(server.user("ada.lovelace@corp.example").unwrap()["active"], true);

    // A run with nothing to do leaves its plan standing (the next one takes it as it is)...
    let idle = apply().await;
    assert!(idle.stdout.contains("No changes."), "{}", idle.all());
    let stood = apply().await;
    assert!(stood.stderr.contains("whose plan stands"), "{}", stood.all());

    // ...until what is forgotten changes. Managed again: she left HR, so she is disabled and
    // leaves the group.
    let undone = state(&["forget", "-f", "scimform.yaml", "--undo", "user:ada.lovelace@corp.example"]).await;
    assert_eq!(undone.code, 0, "{}", undone.all());
    let again = state(&["forget", "-f", "scimform.yaml", "--undo", "user:ada.lovelace@corp.example"]).await;
    assert!(again.stderr.contains("is not forgotten"), "{}", again.stderr);
    assert_eq!(apply().await.code, 0);
    assert_eq!(server.user("ada.lovelace@corp.example").unwrap()["active"], false);
    assert!(!server.group_members("Support_Tier1").contains(&ada));

    // A forgotten group keeps its members whatever the source says.
    let grace = server.user("grace.hopper@corp.example").unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(state(&["forget", "-f", "scimform.yaml", "group:Support_Tier1"]).await.code, 0);
    std::fs::write(
        dir.path().join("people.yaml"),
        gone.replace("members: [\"1002\", \"1004\"]", "members: [\"1004\"]"),
    )
    .unwrap();
    server.reset_writes();
    let group_alone = apply().await;
    assert!(
        group_alone.stderr.contains("group `Support_Tier1` (target group `Support_Tier1`) is forgotten"),
        "{}",
        group_alone.all()
    );
    assert!(server.group_members("Support_Tier1").contains(&grace));
    assert_eq!(server.writes(), 0, "{:?}", server.recorded_writes());

    let no_state = state(&["forget", "-f", "scimform.yaml", "--no-state", "user:x"]).await;
    assert!(no_state.stderr.contains("cannot run with `--no-state`"), "{}", no_state.stderr);
    let unknown = state(&["forget", "-f", "scimform.yaml", "user:nobody@corp.example"]).await;
    assert!(unknown.stderr.contains("the state remembers no user `nobody@corp.example`"), "{}", unknown.stderr);
}
