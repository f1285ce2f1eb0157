use scimform::commands::demo::seeded_store;
use scimform::service::genesys_rules::GenesysRules;
use scimform::service::memory::{MemoryServer, MemoryStore};
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
    // Run in the repository: no state file is left beside the example.
    let args = ["-f", "examples/quickstart/scimform.yaml", "--no-state"];
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
    assert!(
        apply.stderr.contains("Warning: 1 user(s) disabled in the source"),
        "warnings go to stderr: {}",
        apply.all()
    );
    assert!(!apply.stdout.contains("Warning"), "{}", apply.stdout);
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

/// The Genesys profile end to end against the embedded server in its Genesys mode (as strict
/// as Genesys's documentation: active users only unless filtered, pages of 25 unless the
/// expensive attributes are excluded, documented filters and write shapes only), from AD-like records (DNs,
/// a manager DN, phone numbers as people type them, skill groups): phones, manager, department,
/// division, roles, skills and languages converge; a second run has nothing to do; one user
/// leaving a skill group changes only that user's skills; an impossible proficiency stops the
/// plan naming the user and the rule, and nothing is written.
#[tokio::test]
async fn genesys_routing_skills_languages_roles_and_managers() {
    const EXT: &str = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let manifest = format!(
        r#"version: 1
sources:
  ad: {{ kind: file, path: people.yaml }}
target:
  kind: scim
  profile: genesys
  base_url: ${{env:URL}}
  auth: {{ bearer_token: t }}
users:
  source: ad
  external_id: "{{{{ id }}}}"
  attributes:
    userName: "{{{{ mail | lower }}}}"
    'phoneNumbers[type eq "work"].value': '{{{{ telephoneNumber | e164("US") }}}}'
    {ENTERPRISE}:department: department
    {ENTERPRISE}:division: '{{{{ division | default("Home") }}}}'
    {ENTERPRISE}:manager.value: {{ reference: manager }}
  sets:
    {EXT}:routingSkills:
      from: skills
      groups:
        - {{ source: ad, group: {{ name: Skill-Billing }}, name: Billing, proficiency: 3 }}
    {EXT}:routingLanguages:
      from: '{{{{ lang | switch("English", "es", "Spanish") }}}}'
      default_proficiency: 5
    roles:
      groups:
        - {{ source: ad, group: {{ name: Agents }}, name: Agent }}
"#
    );
    let people = |billing: &str, boss_skills: &str| {
        format!(
            r#"users:
  - {{ id: "1", dn: "CN=Boss,OU=Staff,DC=corp,DC=test", mail: boss@corp.test, telephoneNumber: "(201) 555-0100", department: Support, skills: "{boss_skills}", lang: en }}
  - {{ id: "2", dn: "CN=Ann,OU=Staff,DC=corp,DC=test", mail: ann@corp.test, telephoneNumber: "+44 20 7946 0958", department: Support, division: Europe, manager: "cn=boss,ou=staff,dc=corp,dc=test", lang: es }}
  - {{ id: "3", dn: "CN=Bo,OU=Staff,DC=corp,DC=test", mail: bo@corp.test, telephoneNumber: "201.555.0111", department: Sales, manager: "CN=Boss,OU=Staff,DC=corp,DC=test", skills: "Sales:2" }}
groups:
  - {{ id: billing, name: Skill-Billing, members: [{billing}] }}
  - {{ id: agents, name: Agents, members: ["2", "3"] }}
"#
        )
    };
    let server = MemoryServer::start(MemoryStore::new(Some("t")).genesys(GenesysRules::default())).await.unwrap();
    let dir = workspace(&[("m.yaml", &manifest), ("people.yaml", &people(r#""2", "3""#, "Coaching:4"))]);
    let env = [("URL", server.base_url())];

    let first = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(first.stdout.contains("Plan: 3 to create"), "{}", first.stdout);
    let users = server.users();
    let boss = user(&users, "boss@corp.test");
    let ann = user(&users, "ann@corp.test");
    let bo = user(&users, "bo@corp.test");
    assert_eq!(ann["phoneNumbers"], json!([{"type": "work", "value": "+442079460958"}]));
    assert_eq!(bo["phoneNumbers"], json!([{"type": "work", "value": "+12015550111"}]));
    assert_eq!(ann[ENTERPRISE]["manager"]["value"], boss["id"], "a manager DN resolves to the manager's id");
    assert_eq!(bo[ENTERPRISE]["manager"]["value"], boss["id"]);
    assert_eq!(
        (ann[ENTERPRISE]["division"].clone(), bo[ENTERPRISE]["division"].clone()),
        (json!("Europe"), json!("Home"))
    );
    assert_eq!(bo[ENTERPRISE]["department"], "Sales");
    assert_eq!(
        bo[EXT]["routingSkills"],
        json!([{"name": "Billing", "proficiency": 3.0}, {"name": "Sales", "proficiency": 2.0}])
    );
    assert_eq!(boss[EXT]["routingSkills"], json!([{"name": "Coaching", "proficiency": 4.0}]));
    assert_eq!(ann[EXT]["routingLanguages"], json!([{"name": "Spanish", "proficiency": 5.0}]));
    assert_eq!(ann["roles"], json!([{"value": "Agent"}]));
    assert!(boss.get("roles").is_none(), "no empty set is sent on create");

    server.reset_writes();
    let second = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(
        (second.code, second.stdout.as_str()),
        (0, "No changes. The target matches the manifest.\n"),
        "{}",
        second.all()
    );
    assert_eq!(server.writes(), 0);
    // With the state, a scheduled plan reads no page: one `count=0` for each of Genesys's two
    // listing passes (active, then `active eq false`), and the last plan, which changed
    // nothing, stands: the file is as it was.
    let scheduled = run_async(dir.path(), &["plan", "-f", "m.yaml", "-v"], &env).await;
    let requests: Vec<&str> = scheduled.stderr.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(requests, [" INFO GET /Users -> 200", " INFO GET /Users -> 200"], "{}", scheduled.stderr);
    assert!(
        scheduled
            .stderr
            .contains("whose plan stands: every source is as it read it, and the target holds the 3 user(s)"),
        "{}",
        scheduled.stderr
    );
    let explained = run_async(dir.path(), &["explain", "-f", "m.yaml", "ann@corp.test"], &env).await;
    assert!(
        explained.stdout.contains(&format!(
            "  {ENTERPRISE}:manager.value = \"cn=boss,ou=staff,dc=corp,dc=test\"\n      <- the user `manager` refers to"
        )),
        "{}",
        explained.stdout
    );
    assert!(
        explained.stdout.contains("Plan for this user:\n\nNo changes."),
        "the manager resolves in explain too: {}",
        explained.stdout
    );

    // Bo leaves the billing skill group: Bo's skills change, nobody else's.
    std::fs::write(dir.path().join("people.yaml"), people(r#""2""#, "Coaching:4")).unwrap();
    let third = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(third.code, 0, "{}", third.all());
    assert!(third.stdout.contains("- routingSkills[\"Billing\"] = 3"), "{}", third.stdout);
    let writes = server.recorded_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].path, format!("/Users/{}", bo["id"].as_str().unwrap()));
    assert_eq!(
        writes[0].body.as_ref().unwrap()["Operations"],
        json!([{"op": "replace", "path": format!("{EXT}:routingSkills"), "value": [{"name": "Sales", "proficiency": 2.0}]}]),
        "the genesys profile replaces the set in one operation"
    );

    // Proficiency 7 is refused while planning, naming the user and the rule; nothing is written.
    server.reset_writes();
    std::fs::write(dir.path().join("people.yaml"), people(r#""2""#, "Coaching:7")).unwrap();
    let refused = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains(&format!("user `boss@corp.test` (source record `1`): `{EXT}:routingSkills`: proficiency 7 for `Coaching` is out of range (0 to 5)")),
        "{}",
        refused.stderr
    );
    assert_eq!(server.writes(), 0);
}

/// `${env:…}` resolves in every value, not only in credentials: a source group id, a target
/// group's display name, a constant and the external id's text. `validate` without the
/// variables (a pull request's checks) passes with a located warning for each; `plan` without
/// them fails naming each; with them, apply writes the values, never the references.
#[tokio::test]
async fn every_value_is_interpolated_and_validate_needs_no_secrets() {
    let people = "users:\n  - {id: '1', mail: a@x.example}\n  - {id: '2', mail: b@x.example}\ngroups:\n  - {id: team-7, members: ['1', '2']}\n";
    let manifest = r#"version: 1
sources:
  hr: { kind: file, path: people.yaml }
target:
  kind: scim
  base_url: ${env:URL}
  auth: { bearer_token: t }
users:
  source: hr
  external_id: "${env:MARKER}-{{ id }}"
  attributes:
    userName: mail
    title: { constant: "${env:TITLE}" }
groups:
  - name: Team
    source: hr
    from: { id: "team-${env:TEAM_NUMBER}" }
    to: { display_name: "${env:TEAM}" }
    create: true
"#;
    let server = MemoryServer::start(MemoryStore::new(Some("t"))).await.unwrap();
    let dir = workspace(&[("m.yaml", manifest), ("people.yaml", people)]);

    let validated = run_async(dir.path(), &["validate", "-f", "m.yaml"], &[]).await;
    assert_eq!(validated.code, 0, "{}", validated.all());
    assert!(validated.stdout.contains("is valid"), "{}", validated.all());
    assert!(validated.stderr.contains("warning: manifest `m.yaml` has 5 warnings"), "{}", validated.stderr);
    for (at, name) in
        [("6:13", "URL"), ("10:17", "MARKER"), ("13:25", "TITLE"), ("17:23", "TEAM_NUMBER"), ("18:26", "TEAM")]
    {
        assert!(validated.stderr.contains(&format!("m.yaml:{at}")), "{at}: {}", validated.stderr);
        assert!(
            validated.stderr.contains(&format!("environment variable `{name}` is not set")),
            "{name}: {}",
            validated.stderr
        );
    }

    let unset = run_async(dir.path(), &["plan", "-f", "m.yaml"], &[("URL", server.base_url())]).await;
    assert_eq!(unset.code, 1, "{}", unset.all());
    assert!(unset.stderr.contains("error: invalid manifest `m.yaml` (4 problems)"), "{}", unset.stderr);
    assert!(unset.stderr.contains("environment variable `TEAM` is not set"), "{}", unset.stderr);
    assert_eq!(server.writes(), 0);

    let env = [
        ("URL", server.base_url()),
        ("MARKER", "hr"),
        ("TITLE", "Agent"),
        ("TEAM_NUMBER", "7"),
        ("TEAM", "Support Tier 1"),
    ];
    let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(applied.code, 0, "{}", applied.all());
    let users = server.users();
    assert_eq!(user(&users, "a@x.example")["title"], "Agent");
    assert_eq!(user(&users, "a@x.example")["externalId"], "hr-1");
    assert_eq!(server.group_members("Support Tier 1").len(), 2);
    assert!(!applied.all().contains("${env:"), "{}", applied.all());
}
