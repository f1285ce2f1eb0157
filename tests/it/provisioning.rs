//! Who is provisioned and how (issue 16's capabilities), end to end through the binary against
//! the embedded SCIM server: create-only mappings, ...

use scimform::service::memory::{MemoryServer, MemoryStore};
use serde_json::json;

use crate::common::{run_async, workspace};

const TOKEN: &str = "provisioning-token";

fn env(server: &MemoryServer) -> [(&'static str, &str); 2] {
    [("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", TOKEN)]
}

/// A manifest over `people.yaml` with `users` (the section's body, indented by four).
fn manifest(users: &str) -> String {
    format!(
        "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: ${{env:SCIM_BASE_URL}}\n  auth: {{ bearer_token: \"${{env:SCIM_TOKEN}}\" }}\nusers:\n  source: hr\n  external_id: \"hr-{{{{ id }}}}\"\n{users}"
    )
}

mod create_only {
    use super::*;

    const USERS: &str =
        "  attributes:\n    userName: mail\n    title: { from: title, apply: on_create }\n    displayName: name\n";
    const PEOPLE: &str = "users:\n  - {id: '1', mail: ann@x.example, name: Ann Lee, title: Agent}\n  - {id: '2', mail: bo@x.example, name: Bo Ek, title: Agent}\n";

    /// Sent in the POST, never compared afterwards: a supervisor's edit in the target stays,
    /// with or without state, and a saved plan carries it for a create only.
    #[tokio::test]
    async fn a_create_only_attribute_is_sent_once_and_a_hand_edit_survives() {
        let server = MemoryServer::start(MemoryStore::new(Some(TOKEN))).await.unwrap();
        let dir = workspace(&[("m.yaml", &manifest(USERS)), ("people.yaml", PEOPLE)]);
        let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env(&server)).await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        assert!(applied.stdout.contains("title"), "the create shows the value: {}", applied.stdout);
        assert_eq!(server.user("ann@x.example").unwrap()["title"], "Agent");

        let ann = server.user("ann@x.example").unwrap()["id"].as_str().unwrap().to_owned();
        server.edit_user(&ann, |u| u["title"] = json!("Senior Agent (set by her supervisor)"));
        server.reset_writes();
        for args in [&["plan", "-f", "m.yaml", "--detailed-exitcode"][..], &["plan", "-f", "m.yaml", "--no-state"]] {
            let planned = run_async(dir.path(), args, &env(&server)).await;
            assert_eq!(planned.code, 0, "{args:?}: {}", planned.all());
            assert!(planned.stdout.contains("No changes."), "{args:?}: {}", planned.stdout);
        }
        // The source changing the value changes nothing either.
        std::fs::write(dir.path().join("people.yaml"), PEOPLE.replace("title: Agent}", "title: Lead}")).unwrap();
        let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env(&server)).await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        assert!(applied.stdout.contains("No changes."), "{}", applied.stdout);
        assert_eq!(server.writes(), 0);
        assert_eq!(server.user("ann@x.example").unwrap()["title"], "Senior Agent (set by her supervisor)");
        let explained = run_async(dir.path(), &["explain", "-f", "m.yaml", "ann@x.example"], &env(&server)).await;
        assert_eq!(explained.code, 0, "{}", explained.all());
        assert!(explained.stdout.contains("title = \"Lead\" (on create only)"), "{}", explained.stdout);

        // A new person is created with the value, through a saved plan too.
        std::fs::write(
            dir.path().join("people.yaml"),
            format!("{PEOPLE}  - {{id: '3', mail: cy@x.example, name: Cy Oh, title: Trainee}}\n"),
        )
        .unwrap();
        let planned = run_async(dir.path(), &["plan", "-f", "m.yaml", "--out", "p.json"], &env(&server)).await;
        assert_eq!(planned.code, 0, "{}", planned.all());
        let applied = run_async(dir.path(), &["apply", "p.json"], &env(&server)).await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        assert_eq!(server.user("cy@x.example").unwrap()["title"], "Trainee");
        assert_eq!(server.writes(), 1, "one POST");
    }

    #[tokio::test]
    async fn the_match_attribute_cannot_be_create_only() {
        let users = "  attributes:\n    userName: { from: mail, apply: on_create }\n";
        let dir = workspace(&[("m.yaml", &manifest(users)), ("people.yaml", PEOPLE)]);
        let checked = run_async(dir.path(), &["validate", "-f", "m.yaml"], &[]).await;
        assert_eq!(checked.code, 1, "{}", checked.all());
        assert!(
            checked
                .stderr
                .contains("the match attribute `userName` is compared on every run: it cannot be `on_create`"),
            "{}",
            checked.stderr
        );
        assert!(checked.stderr.contains("m.yaml:12:36"), "located: {}", checked.stderr);
    }
}

mod scope {
    use super::*;

    const USERS: &str = "  attributes:\n    userName: mail\n    displayName: name\n  scope:\n    member_of:\n      - { source: hr, group: { id: cc }, nested: true }\n    filters:\n      - - { attribute: department, operator: equals, value: Support }\n        - { attribute: employeeType, operator: not_equals, value: Contractor }\n      - - { attribute: title, operator: matches, value: '^Team Lead' }\n";

    fn people(ann_department: &str, in_group: &[&str]) -> String {
        let members: Vec<String> = in_group.iter().map(|m| format!("'{m}'")).collect();
        format!(
            "users:\n  - {{id: '1', mail: ann@x.example, name: Ann, department: {ann_department}, employeeType: Employee}}\n  - {{id: '2', mail: bo@x.example, name: Bo, department: Support, employeeType: Contractor}}\n  - {{id: '3', mail: cy@x.example, name: Cy, department: Sales, title: Team Lead East}}\n  - {{id: '4', mail: di@x.example, name: Di, department: Support}}\ngroups:\n  - {{id: cc, name: CC Agents, members: ['inner']}}\n  - {{id: inner, name: CC Inner, members: [{}]}}\n",
            members.join(", ")
        )
    }

    /// Group (nested) and filters together; a user whose department changes out of the filter
    /// is disabled by the next run with the reason in the plan, one write; back in, enabled.
    #[tokio::test]
    async fn users_in_scope_are_provisioned_and_one_that_leaves_it_is_disabled_and_comes_back() {
        let server = MemoryServer::start(MemoryStore::new(Some(TOKEN))).await.unwrap();
        let dir = workspace(&[("m.yaml", &manifest(USERS)), ("people.yaml", &people("Support", &["1", "2", "3"]))]);
        let env = env(&server);
        let apply = || run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env);
        let applied = apply().await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        // Ann (support employee) and Cy (team lead) are in; Bo is a contractor, Di in no group.
        let mut names: Vec<String> =
            server.users().iter().map(|u| u["userName"].as_str().unwrap().to_owned()).collect();
        names.sort();
        assert_eq!(names, ["ann@x.example", "cy@x.example"]);

        std::fs::write(dir.path().join("people.yaml"), people("Sales", &["1", "2", "3"])).unwrap();
        server.reset_writes();
        let applied = apply().await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        assert!(
            applied.stdout.contains(
                "# user \"ann@x.example\" will be disabled (left the scope: no scope filter holds (department is \"Sales\"; the filter asks department equals \"support\"))"
            ),
            "{}",
            applied.stdout
        );
        assert_eq!(server.writes(), 1, "exactly Ann is disabled");
        assert_eq!(server.user("ann@x.example").unwrap()["active"], false);

        std::fs::write(dir.path().join("people.yaml"), people("Support", &["1", "2", "3"])).unwrap();
        server.reset_writes();
        let applied = apply().await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        assert_eq!(server.writes(), 1);
        assert_eq!(server.user("ann@x.example").unwrap()["active"], true);

        // Out of the (nested) group: disabled, saying so; the JSON plan says it too.
        std::fs::write(dir.path().join("people.yaml"), people("Support", &["2", "3"])).unwrap();
        let planned = run_async(dir.path(), &["plan", "-f", "m.yaml", "--format", "json"], &env).await;
        assert_eq!(planned.code, 0, "{}", planned.all());
        let plan: serde_json::Value = serde_json::from_str(&planned.stdout).unwrap();
        let change = &plan["plan"]["users"][0];
        assert_eq!(
            (change["action"].as_str(), change["reason"].as_str(), change["why"].as_str()),
            (Some("deprovision"), Some("left_scope"), Some("no longer in group \"CC Agents\""))
        );
        server.reset_writes();
        let applied = apply().await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        assert_eq!(server.writes(), 1);
        let again = apply().await;
        assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    }

    /// `out_of_scope` counts against the rails like any deprovision.
    #[tokio::test]
    async fn leaving_the_scope_counts_against_the_rails() {
        let server = MemoryServer::start(MemoryStore::new(Some(TOKEN))).await.unwrap();
        let users = format!("{USERS}  deprovision: {{ max: 0 }}\n");
        let dir = workspace(&[("m.yaml", &manifest(&users)), ("people.yaml", &people("Support", &["1", "3"]))]);
        let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env(&server)).await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        std::fs::write(dir.path().join("people.yaml"), people("Support", &["3"])).unwrap();
        let blocked = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env(&server)).await;
        assert_eq!(blocked.code, 1, "{}", blocked.all());
        assert!(blocked.stderr.contains("refusing to apply a blocked plan"), "{}", blocked.stderr);
        assert_eq!(server.user("ann@x.example").unwrap()["active"], true);
    }
}
