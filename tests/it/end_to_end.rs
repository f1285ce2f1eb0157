use scimform::commands::demo::seeded_store;
use scimform::target::memory::{MemoryServer, MemoryStore};
use serde_json::{Value, json};

use crate::common::{repo_root, run_async, workspace};

fn user<'a>(users: &'a [Value], name: &str) -> &'a Value {
    users.iter().find(|u| u["userName"] == name).unwrap_or_else(|| panic!("no user {name}"))
}

/// The quickstart example, read from disk, against the embedded server over HTTP.
#[tokio::test]
async fn plan_apply_plan_converges_and_leaves_unmanaged_attributes_alone() {
    let server = MemoryServer::start(seeded_store()).await.unwrap();
    let env = [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", "demo-token")];
    let root = repo_root();
    let args = ["-f", "examples/quickstart/scimform.yaml"];
    let before = server.users();

    let plan = run_async(&root, &[&["plan"], &args[..]].concat(), &env).await;
    assert_eq!(plan.code, 0, "{}", plan.all());
    assert!(
        plan.stdout
            .contains("Plan: 1 to create, 1 to update, 1 to adopt, 2 to disable, 0 to delete, 1 group to change."),
        "{}",
        plan.stdout
    );
    assert_eq!(server.writes(), 0, "plan must not write");

    let apply = run_async(&root, &[&["apply"], &args[..], &["--auto-approve"]].concat(), &env).await;
    assert_eq!(apply.code, 0, "{}", apply.all());
    assert!(apply.stderr.contains("Apply complete! 6 operation(s) applied."), "{}", apply.stderr);

    server.reset_writes();
    let again = run_async(&root, &[&["apply"], &args[..], &["--auto-approve"]].concat(), &env).await;
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (0, "No changes. The target matches the manifest.\n"),
        "{}",
        again.stderr
    );
    assert_eq!(server.writes(), 0, "a run with nothing to do must send zero writes");

    let after = server.users();
    // Unmanaged attributes are exactly as they were.
    let (ada_before, ada_after) =
        (user(&before, "ada.lovelace@corp.example"), user(&after, "ada.lovelace@corp.example"));
    assert_eq!(ada_after["nickName"], ada_before["nickName"]);
    assert_eq!(ada_after["phoneNumbers"], ada_before["phoneNumbers"]);
    assert_eq!(ada_after["title"], "Support Engineer");
    // Someone else's user is untouched, version included.
    assert_eq!(user(&after, "contractor@partner.example"), user(&before, "contractor@partner.example"));
    // Created, adopted, disabled as planned.
    let katherine = user(&after, "katherine.johnson@corp.example");
    assert_eq!((katherine["externalId"].clone(), katherine["active"].clone()), (json!("hr-1004"), json!(true)));
    assert_eq!(user(&after, "barbara.liskov@corp.example")["externalId"], "hr-1006");
    assert_eq!(user(&after, "edsger.dijkstra@corp.example")["active"], false);
    assert_eq!(user(&after, "old.user@corp.example")["active"], false);
    // The group holds exactly the source's members, by target id.
    let groups_ids: Vec<String> =
        ["ada.lovelace@corp.example", "grace.hopper@corp.example", "katherine.johnson@corp.example"]
            .iter()
            .map(|n| user(&after, n)["id"].as_str().unwrap().to_owned())
            .collect();
    let group_id = "00000000-0000-4000-8000-000000000008";
    let mut members: Vec<String> = server.group(group_id).unwrap()["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    members.sort();
    let mut expected = groups_ids;
    expected.sort();
    assert_eq!(members, expected);
}

/// An HR export as CSV, with a multi-valued column, into an empty target.
#[tokio::test]
async fn csv_export_into_an_empty_target() {
    let csv = "id,mail,givenName,sn,title,disabled\n7,Zoe.Ng@corp.example,Zoe,Ng,Agent,false\n8,yan.li@corp.example,Yan,Li,,false\n9,old.timer@corp.example,Old,Timer,Agent,true\n";
    let manifest = r#"version: 1
sources:
  hr: { kind: file, path: people.csv }
target:
  kind: scim
  base_url: ${env:URL}
  auth: { bearer_token: "${env:TOKEN}" }
users:
  source: hr
  external_id: "csv:{{ id }}"
  attributes:
    userName: "{{ mail | lower }}"
    displayName: "{{ givenName }} {{ sn | upper }}"
    title: "{{ title | default('Unassigned') }}"
"#;
    let server = MemoryServer::start(MemoryStore::new(Some("t"))).await.unwrap();
    let dir = workspace(&[("m.yaml", manifest), ("people.csv", csv)]);
    let env = [("URL", server.base_url()), ("TOKEN", "t")];
    let apply = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(apply.code, 0, "{}", apply.all());
    assert!(apply.stdout.contains("Plan: 2 to create"), "{}", apply.stdout);
    assert!(apply.stdout.contains("Warning: 1 user(s) disabled in the source"), "{}", apply.stdout);
    let users = server.users();
    assert_eq!(users.len(), 2);
    assert_eq!(user(&users, "yan.li@corp.example")["title"], "Unassigned");
    assert_eq!(user(&users, "zoe.ng@corp.example")["displayName"], "Zoe NG");
    server.reset_writes();
    let again = run_async(dir.path(), &["plan", "-f", "m.yaml", "--detailed-exitcode"], &env).await;
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(server.writes(), 0);
}

/// Target groups are paired, never created, unless a pairing says `create: true`.
#[tokio::test]
async fn a_missing_target_group_is_created_only_when_the_pairing_says_so() {
    let people = "users:\n  - {id: '1', mail: a@x.example}\n  - {id: '2', mail: b@x.example}\ngroups:\n  - {id: team, members: ['1', '2']}\n";
    let manifest = |create: bool| {
        format!(
            "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: ${{env:URL}}\n  auth: {{ bearer_token: t }}\nusers:\n  source: hr\n  attributes:\n    userName: mail\ngroups:\n  - {{ name: Team, source: hr, from: {{ id: team }}, to: {{ display_name: New Team }}, create: {create} }}\n"
        )
    };
    let server = MemoryServer::start(MemoryStore::new(Some("t"))).await.unwrap();
    let dir =
        workspace(&[("paired.yaml", &manifest(false)), ("create.yaml", &manifest(true)), ("people.yaml", people)]);
    let env = [("URL", server.base_url())];

    let paired = run_async(dir.path(), &["plan", "-f", "paired.yaml"], &env).await;
    assert_eq!(paired.code, 1);
    assert!(paired.stderr.contains("target group displayName `New Team` was not found"), "{}", paired.stderr);

    let created = run_async(dir.path(), &["apply", "-f", "create.yaml", "--auto-approve"], &env).await;
    assert_eq!(created.code, 0, "{}", created.all());
    assert!(created.stdout.contains("+ group \"Team\" {"), "{}", created.stdout);
    assert!(created.stdout.contains("+ member \"b@x.example\" (known after apply)"), "{}", created.stdout);
    assert_eq!(server.group_members("New Team").len(), 2);

    server.reset_writes();
    let again = run_async(dir.path(), &["apply", "-f", "create.yaml", "--auto-approve"], &env).await;
    assert!(again.stdout.starts_with("No changes."), "{}", again.all());
    assert_eq!(server.writes(), 0);
}
