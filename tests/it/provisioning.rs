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

/// The `entra` source of the strict Graph double at `graph` (its URI), and the target, as
/// manifest lines.
fn entra_and_target(graph: &str) -> String {
    format!(
        "  entra:\n    kind: graph\n    tenant_id: contoso\n    client_id: app-id\n    client_secret: ${{env:GRAPH_SECRET}}\n    authority: {graph}/contoso/oauth2/v2.0/token\n    graph_url: {graph}/v1.0\ntarget:\n  kind: scim\n  base_url: ${{env:SCIM_BASE_URL}}\n  auth: {{ bearer_token: \"${{env:SCIM_TOKEN}}\" }}\n"
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

/// A Graph users' source scoped by one of its groups, against the strict Graph double: a
/// group of 50 in a tenant of 5,000, read at the cost of the 50.
mod graph_scope {
    use std::collections::BTreeMap;

    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

    use super::*;
    use crate::graph::user;
    use crate::graph_double::{graph_server, mount_graph};

    const GROUP: &str = "c0ffee00-0000-4000-8000-00000000cc01";
    const TENANT: usize = 5_000;

    fn id(i: usize) -> String {
        user(i)["id"].as_str().unwrap().to_owned()
    }

    /// `/users/delta`: filtered by id, the tenant's users with those ids and a link of their
    /// own; followed by its link, no changes.
    struct UsersDelta {
        tenant: BTreeMap<String, serde_json::Value>,
        uri: String,
    }

    impl Respond for UsersDelta {
        fn respond(&self, request: &Request) -> ResponseTemplate {
            let query: BTreeMap<String, String> = request.url.query_pairs().into_owned().collect();
            let link = |token: &str| format!("{}/v1.0/users/delta?$deltatoken={token}", self.uri);
            if let Some(token) = query.get("$deltatoken") {
                return ResponseTemplate::new(200).set_body_json(json!({"value": [], "@odata.deltaLink": link(token)}));
            }
            let Some(filter) = query.get("$filter") else {
                return ResponseTemplate::new(500).set_body_string("the test tenant is never listed whole");
            };
            let ids: Vec<&str> =
                filter.split(" or ").filter_map(|c| c.strip_prefix("id eq '")?.strip_suffix('\'')).collect();
            let users: Vec<&serde_json::Value> = ids.iter().filter_map(|id| self.tenant.get(*id)).collect();
            let token = format!("b{}", ids.first().copied().unwrap_or_default());
            ResponseTemplate::new(200).set_body_json(json!({"value": users, "@odata.deltaLink": link(&token)}))
        }
    }

    /// The run's mocks: the token, the group, its delta (`members@delta` as given, on from
    /// `token`), the tenant's users by delta, and a tenant listing that must never be asked for.
    async fn mount(graph: &MockServer, token: Option<&str>, members: &serde_json::Value, next: &str) {
        graph.reset().await;
        mount_graph(graph).await;
        Mock::given(method("GET"))
            .and(path(format!("/v1.0/groups/{GROUP}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": GROUP, "displayName": "CC Agents"})))
            .mount(graph)
            .await;
        let group_delta = Mock::given(method("GET")).and(path("/v1.0/groups/delta"));
        let group_delta = match token {
            Some(token) => group_delta.and(query_param("$deltatoken", token)),
            None => group_delta.and(query_param("$filter", format!("id eq '{GROUP}'"))),
        };
        group_delta
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "value": [{"id": GROUP, "members@delta": members}],
                "@odata.deltaLink": format!("{}/v1.0/groups/delta?$deltatoken={next}", graph.uri())})))
            .mount(graph)
            .await;
        let tenant = (1..=TENANT).map(|i| (id(i), user(i))).collect();
        Mock::given(method("GET"))
            .and(path("/v1.0/users/delta"))
            .respond_with(UsersDelta { tenant, uri: graph.uri() })
            .mount(graph)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1.0/users"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(graph)
            .await;
        // Without a state: the group's transitive user members, whole.
        let users: Vec<serde_json::Value> = members
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m.get("@removed").is_none())
            .filter_map(|m| m["id"].as_str())
            .filter_map(|id| (1..=TENANT).map(user).find(|u| u["id"] == id))
            .collect();
        Mock::given(method("GET"))
            .and(path(format!("/v1.0/groups/{GROUP}/transitiveMembers/microsoft.graph.user")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": users})))
            .mount(graph)
            .await;
    }

    /// No request lists the tenant's users: neither `/users` nor an unfiltered `/users/delta`.
    async fn assert_no_tenant_listing(graph: &MockServer) {
        for request in graph.received_requests().await.unwrap_or_default() {
            let url = request.url.to_string();
            assert!(!url.contains("/v1.0/users?") && !url.ends_with("/v1.0/users"), "a tenant listing: {url}");
            if request.url.path() == "/v1.0/users/delta" {
                let by_id = request.url.query_pairs().any(|(k, v)| k == "$filter" && v.starts_with("id eq '"));
                let followed = request.url.query_pairs().any(|(k, _)| k == "$deltatoken");
                assert!(by_id || followed, "an unfiltered users delta: {url}");
            }
        }
    }

    #[tokio::test]
    async fn a_group_of_50_in_a_tenant_of_5000_is_read_by_delta_and_a_removed_member_is_disabled() {
        let graph = graph_server().await;
        let members: Vec<serde_json::Value> =
            (0..50).map(|i| json!({"@odata.type": "#microsoft.graph.user", "id": id(i * 100 + 1)})).collect();
        mount(&graph, None, &json!(members), "g1").await;
        let server = MemoryServer::start(MemoryStore::new(Some(TOKEN))).await.unwrap();
        let manifest = format!(
            r#"version: 1
sources:
{entra}users:
  source: entra
  external_id: "{{{{ id }}}}"
  attributes:
    userName: "{{{{ userPrincipalName | lower }}}}"
  scope:
    member_of:
      - {{ source: entra, group: {{ id: {GROUP} }}, nested: true }}
"#,
            entra = entra_and_target(&graph.uri()),
        );
        let dir = workspace(&[("m.yaml", &manifest)]);
        let env = [("GRAPH_SECRET", "app-secret"), ("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", TOKEN)];
        let apply = ["apply", "-f", "m.yaml", "--auto-approve"];

        // Without a state: the members read whole, still not the tenant.
        let planned = run_async(dir.path(), &["plan", "-f", "m.yaml", "--no-state"], &env).await;
        assert_eq!(planned.code, 0, "{}", planned.all());
        assert!(planned.stdout.contains("Plan: 50 to create"), "{}", planned.stdout);
        assert_no_tenant_listing(&graph).await;

        let first = run_async(dir.path(), &apply, &env).await;
        assert_eq!(first.code, 0, "{}", first.all());
        assert!(first.stderr.contains("Source `entra` read in full (50 users)."), "{}", first.stderr);
        assert_eq!(server.users().len(), 50, "the 50 members, of 5,000");
        assert_no_tenant_listing(&graph).await;

        // Member 701 is removed from the group in Entra; the next run reads that by delta.
        let removed =
            json!([{"@odata.type": "#microsoft.graph.user", "id": id(701), "@removed": {"reason": "deleted"}}]);
        mount(&graph, Some("g1"), &removed, "g2").await;
        server.reset_writes();
        let second = run_async(dir.path(), &apply, &env).await;
        assert_eq!(second.code, 0, "{}", second.all());
        assert!(second.stderr.contains("Source `entra` read incrementally"), "{}", second.stderr);
        assert!(
            second
                .stdout
                .contains("# user \"user701@contoso.example\" will be disabled (left the scope: no longer in group"),
            "{}",
            second.stdout
        );
        assert_eq!(server.writes(), 1, "{}", second.all());
        assert_eq!(server.user("user701@contoso.example").unwrap()["active"], false);
        assert_no_tenant_listing(&graph).await;

        // Nothing changed: no write, the batches followed by their links.
        mount(&graph, Some("g2"), &json!([]), "g3").await;
        let third = run_async(dir.path(), &apply, &env).await;
        assert!(third.stdout.contains("No changes."), "{}", third.stdout);
        assert_no_tenant_listing(&graph).await;
    }
}

mod match_keys {
    use super::*;

    const USERS: &str = "  match: [userName, 'emails[type eq \"work\"].value']\n  attributes:\n    userName: upn\n    'emails[type eq \"work\"].value': mail\n    displayName: name\n";
    const PEOPLE: &str = "users:\n  - {id: '1', upn: ann@corp.example, mail: ann@work.example, name: Ann}\n  - {id: '2', upn: bo@corp.example, mail: bo@work.example, name: Bo}\n";

    /// Ann exists in the target under an old login with her work address: found by the second
    /// key and adopted. Bo's work address is on two target users: reported, nothing written.
    #[tokio::test]
    async fn a_user_found_only_by_work_email_is_adopted_and_an_ambiguous_one_is_left_alone() {
        let mut store = MemoryStore::new(Some(TOKEN));
        let email = |address: &str| json!([{"type": "work", "value": address}]);
        let ann = store
            .insert_user(json!({"userName": "old-ann", "emails": email("Ann@Work.example"), "displayName": "Ann"}));
        store.insert_user(json!({"userName": "bo-1", "emails": email("bo@work.example")}));
        store.insert_user(json!({"userName": "bo-2", "emails": email("bo@work.example")}));
        let server = MemoryServer::start(store).await.unwrap();
        let dir = workspace(&[("m.yaml", &manifest(USERS)), ("people.yaml", PEOPLE)]);

        let focused =
            run_async(dir.path(), &["plan", "-f", "m.yaml", "--target", "user:ann@work.example"], &env(&server)).await;
        assert_eq!(focused.code, 0, "{}", focused.all());
        assert!(
            focused.stdout.contains("# user \"ann@corp.example\" will be adopted"),
            "by any key: {}",
            focused.stdout
        );

        let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env(&server)).await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        assert!(applied.stdout.contains("# user \"ann@corp.example\" will be adopted"), "{}", applied.stdout);
        assert!(
            applied.all().contains("2 target users match `emails[type eq \"work\"].value` = `bo@work.example`"),
            "{}",
            applied.all()
        );
        let adopted = server.users().into_iter().find(|u| u["id"] == ann.as_str()).unwrap();
        assert_eq!(adopted["userName"], "ann@corp.example");
        assert_eq!(adopted["externalId"], "hr-1");
        assert_eq!(server.users().len(), 3, "nothing created for Bo");
        assert_eq!(server.writes(), 1);
    }
}

mod delayed_deletion {
    use super::*;

    const USERS: &str =
        "  attributes:\n    userName: mail\n  deprovision: { action: disable, delete_after_days: 30 }\n";

    fn people(ids: &[&str]) -> String {
        let lines: Vec<String> = ids.iter().map(|id| format!("  - {{id: '{id}', mail: {id}@x.example}}\n")).collect();
        format!("users:\n{}", lines.concat())
    }

    /// The run's clock is `SCIMFORM_NOW`: day 0 disables, day 29 waits, day 30 deletes; a user
    /// that comes back is enabled and its clock starts again when it leaves again.
    #[tokio::test]
    async fn disabled_on_day_0_still_disabled_on_day_29_deleted_on_day_30() {
        let server = MemoryServer::start(MemoryStore::new(Some(TOKEN))).await.unwrap();
        let dir = workspace(&[("m.yaml", &manifest(USERS)), ("people.yaml", &people(&["ann", "bo", "cy"]))]);
        let at = |day: u32| {
            let date = jiff::civil::date(2026, 1, 1).checked_add(jiff::Span::new().days(i64::from(day))).unwrap();
            format!("{date}T09:00:00Z")
        };
        let apply = |day: u32| {
            let now = at(day);
            let env: Vec<(String, String)> = env(&server)
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .chain([("SCIMFORM_NOW".to_owned(), now)])
                .collect();
            let dir = dir.path().to_path_buf();
            async move {
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                run_async(&dir, &["apply", "-f", "m.yaml", "--auto-approve"], &env).await
            }
        };
        let write = |ids: &[&str]| std::fs::write(dir.path().join("people.yaml"), people(ids)).unwrap();
        assert_eq!(apply(0).await.code, 0);

        write(&["ann", "cy"]);
        let day0 = apply(0).await;
        assert_eq!(day0.code, 0, "{}", day0.all());
        assert!(
            day0.stdout.contains("# user \"bo@x.example\" will be disabled (not in any source)"),
            "{}",
            day0.stdout
        );
        assert_eq!(server.user("bo@x.example").unwrap()["active"], false);

        let day29 = apply(29).await;
        assert!(day29.stdout.contains("No changes."), "{}", day29.stdout);
        assert!(server.user("bo@x.example").is_some());

        // Day 30: the plan deletes Bo, saying why.
        let blocked = run_async(
            dir.path(),
            &["plan", "-f", "m.yaml", "--detailed-exitcode"],
            &[&env(&server)[..], &[("SCIMFORM_NOW", &at(30))]].concat(),
        )
        .await;
        assert_eq!(blocked.code, 2, "{}", blocked.all());
        assert!(
            blocked.stdout.contains(
                "# user \"bo@x.example\" will be deleted (disabled by scimform on 2026-01-01, 30 days ago, and still gone; `delete_after_days: 30`)"
            ),
            "{}",
            blocked.stdout
        );
        let deleted = apply(30).await;
        assert_eq!(deleted.code, 0, "{}", deleted.all());
        assert!(server.user("bo@x.example").is_none(), "deleted on day 30");

        // Cy leaves on day 30 and comes back on day 40: enabled, clock cleared; leaves again on
        // day 50: not deleted on day 75 (25 days), deleted on day 80.
        write(&["ann"]);
        assert_eq!(apply(30).await.code, 0);
        write(&["ann", "cy"]);
        let back = apply(40).await;
        assert!(back.stdout.contains("# user \"cy@x.example\" will be updated in place"), "{}", back.stdout);
        assert_eq!(server.user("cy@x.example").unwrap()["active"], true);
        write(&["ann"]);
        assert_eq!(apply(50).await.code, 0);
        assert!(apply(75).await.stdout.contains("No changes."));
        assert!(server.user("cy@x.example").is_some());
        assert_eq!(apply(80).await.code, 0);
        assert!(server.user("cy@x.example").is_none());
    }

    #[tokio::test]
    async fn without_a_state_it_is_refused() {
        let server = MemoryServer::start(MemoryStore::new(Some(TOKEN))).await.unwrap();
        let dir = workspace(&[("m.yaml", &manifest(USERS)), ("people.yaml", &people(&["ann"]))]);
        let refused =
            run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve", "--no-state"], &env(&server)).await;
        assert_eq!(refused.code, 1, "{}", refused.all());
        assert!(
            refused.stderr.contains("`users.deprovision.delete_after_days: 30` needs a state"),
            "{}",
            refused.stderr
        );
        assert_eq!(server.writes(), 0);
    }
}

mod rails {
    use super::*;

    const USERS: &str = "  attributes:\n    userName: mail\n  limits:\n    attribute_changes:\n      userName: { max: 5 }\ngroups:\n  - { name: Team, source: hr, from: { id: team }, to: { display_name: Team }, create: true, max_removals: 3 }\n";

    fn people(domain: &str, team: &[usize]) -> String {
        let users: Vec<String> = (1..=6).map(|i| format!("  - {{id: '{i}', mail: u{i}@{domain}}}\n")).collect();
        let users = users.concat();
        let members: Vec<String> = team.iter().map(|i| format!("'{i}'")).collect();
        format!("users:\n{users}groups:\n  - {{id: team, name: Team, members: [{}]}}\n", members.join(", "))
    }

    #[tokio::test]
    async fn user_name_changes_and_group_removals_over_their_limits_are_blocked_until_allowed() {
        let server = MemoryServer::start(MemoryStore::new(Some(TOKEN))).await.unwrap();
        let dir = workspace(&[("m.yaml", &manifest(USERS)), ("people.yaml", &people("a.example", &[1, 2, 3, 4, 5]))]);
        let env = env(&server);
        let apply = |extra: &'static [&'static str]| {
            let args: Vec<&'static str> = [&["apply", "-f", "m.yaml", "--auto-approve"][..], extra].concat();
            let (dir, env) = (dir.path().to_path_buf(), env);
            async move { run_async(&dir, &args, &env).await }
        };
        assert_eq!(apply(&[]).await.code, 0);

        // Six logins rewritten, four members removed: both rails hold the plan.
        std::fs::write(dir.path().join("people.yaml"), people("b.example", &[5])).unwrap();
        server.reset_writes();
        let blocked = apply(&[]).await;
        assert_eq!(blocked.code, 1, "{}", blocked.all());
        assert!(blocked.stdout.contains("Error: this plan is blocked: the plan changes `userName` of 6 users, more than `users.limits.attribute_changes.userName.max` (5); the plan removes 4 members of group `Team`, more than `groups.Team.max_removals` (3)"), "{}", blocked.stdout);
        assert!(
            blocked.stderr.contains("pass `--allow attribute_changes.userName=6 --allow removals.Team=4`"),
            "{}",
            blocked.stderr
        );
        assert_eq!(server.writes(), 0);

        // One allowed is not enough; an allowance below the count refuses too.
        let one = apply(&["--allow", "attribute_changes.userName=6"]).await;
        assert_eq!(one.code, 1, "{}", one.all());
        assert!(one.stderr.contains("pass `--allow removals.Team=4`"), "{}", one.stderr);
        let short = apply(&["--allow", "attribute_changes.userName=5", "--allow", "removals.Team=4"]).await;
        assert!(
            short.stderr.contains("the plan goes over `--allow attribute_changes.userName=5` (6)"),
            "{}",
            short.stderr
        );
        let unknown = apply(&["--allow", "title=1"]).await;
        assert!(unknown.stderr.contains("`--allow title=1` names no limit"), "{}", unknown.stderr);
        assert_eq!(server.writes(), 0);

        let allowed = apply(&["--allow", "attribute_changes.userName=6", "--allow", "removals.Team=4"]).await;
        assert_eq!(allowed.code, 0, "{}", allowed.all());
        assert_eq!(server.user("u1@b.example").unwrap()["active"], true);
        assert_eq!(server.group_members("Team").len(), 1);
    }
}

mod unmanaged {
    use super::*;

    #[tokio::test]
    async fn target_users_the_manifest_does_not_manage_are_counted_listed_and_left_alone() {
        let mut store = MemoryStore::new(Some(TOKEN));
        store.insert_user(json!({"userName": "admin@x.example"}));
        store.insert_user(json!({"userName": "svc-bot@x.example"}));
        store.insert_user(json!({"userName": "ext@x.example", "externalId": "other-tool-7"}));
        store.insert_user(json!({"userName": "ann@x.example"}));
        let server = MemoryServer::start(store).await.unwrap();
        let users = "  attributes:\n    userName: mail\n";
        let dir =
            workspace(&[("m.yaml", &manifest(users)), ("people.yaml", "users:\n  - {id: '1', mail: ann@x.example}\n")]);

        let planned = run_async(dir.path(), &["plan", "-f", "m.yaml", "--show-unmanaged"], &env(&server)).await;
        assert_eq!(planned.code, 0, "{}", planned.all());
        assert!(
            planned
                .stderr
                .contains("Note: 3 user(s) in the target are not managed by this manifest and are left alone"),
            "{}",
            planned.stderr
        );
        assert!(planned.stdout.contains("Users in the target not managed by this manifest (3):"), "{}", planned.stdout);
        assert!(planned.stdout.contains("  \"svc-bot@x.example\" (id "), "{}", planned.stdout);
        let json = run_async(dir.path(), &["plan", "-f", "m.yaml", "--format", "json"], &env(&server)).await;
        let document: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        let mut names: Vec<&str> =
            document["plan"]["unmanaged"].as_array().unwrap().iter().map(|u| u["userName"].as_str().unwrap()).collect();
        names.sort_unstable();
        assert_eq!(names, ["admin@x.example", "ext@x.example", "svc-bot@x.example"]);

        let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env(&server)).await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        assert_eq!(server.writes(), 1, "Ann adopted; the three untouched");
    }
}

/// A pairing pattern over Entra groups, against the strict Graph double.
mod group_patterns {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::graph_double::{graph_server, mount_graph};

    fn group_id(name: &str) -> String {
        format!("6c0ffee0-0000-4000-8000-{:0>12}", name.len() * 1000 + name.bytes().map(usize::from).sum::<usize>())
    }

    /// The tenant's `GC-` groups, each with members whose mail is `<member>@x.example`.
    async fn mount(graph: &MockServer, groups: &[(&str, &[&str])]) {
        graph.reset().await;
        mount_graph(graph).await;
        let listed: Vec<serde_json::Value> =
            groups.iter().map(|(name, _)| json!({"id": group_id(name), "displayName": name})).collect();
        Mock::given(method("GET"))
            .and(path("/v1.0/groups"))
            .and(query_param("$filter", "startswith(displayName,'GC-')"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": listed})))
            .mount(graph)
            .await;
        for (name, members) in groups {
            let id = group_id(name);
            Mock::given(method("GET"))
                .and(path(format!("/v1.0/groups/{id}")))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": id, "displayName": name})))
                .mount(graph)
                .await;
            let users: Vec<serde_json::Value> = members
                .iter()
                .map(|m| json!({"id": format!("u-{m}"), "mail": format!("{m}@x.example"), "accountEnabled": true}))
                .collect();
            Mock::given(method("GET"))
                .and(path(format!("/v1.0/groups/{id}/members/microsoft.graph.user")))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": users})))
                .mount(graph)
                .await;
        }
    }

    #[tokio::test]
    async fn three_gc_groups_make_three_target_groups_and_a_fourth_is_created_when_it_appears() {
        let graph = graph_server().await;
        let sales: &[&str] = &["ann", "bo"];
        let three = [
            ("GC-Sales", sales),
            ("GC-Billing", &["cy"][..]),
            ("GC-Support", &["ann", "di"][..]),
            ("Other", &["bo"][..]),
        ];
        mount(&graph, &three).await;
        let server = MemoryServer::start(MemoryStore::new(Some(TOKEN))).await.unwrap();
        let manifest = format!(
            r#"version: 1
sources:
  hr: {{ kind: file, path: people.yaml }}
{entra}users:
  source: hr
  external_id: "hr-{{{{ id }}}}"
  attributes:
    userName: mail
groups:
  - name: "gc-{{{{ match.1 }}}}"
    source: entra
    from: {{ name_matches: "^GC-(.+)$" }}
    member_key: "{{{{ mail | lower }}}}"
    to: {{ display_name: "{{{{ match.1 }}}}" }}
    create: true
"#,
            entra = entra_and_target(&graph.uri()),
        );
        let people = "users:\n  - {id: '1', mail: ann@x.example}\n  - {id: '2', mail: bo@x.example}\n  - {id: '3', mail: cy@x.example}\n  - {id: '4', mail: di@x.example}\n";
        let dir = workspace(&[("m.yaml", &manifest), ("people.yaml", people)]);
        let env = [("GRAPH_SECRET", "app-secret"), ("SCIM_BASE_URL", server.base_url()), ("SCIM_TOKEN", TOKEN)];
        let apply = ["apply", "-f", "m.yaml", "--auto-approve", "--no-state"];

        let first = run_async(dir.path(), &apply, &env).await;
        assert_eq!(first.code, 0, "{}", first.all());
        for pairing in ["gc-Sales", "gc-Billing", "gc-Support"] {
            assert!(
                first.stdout.contains(&format!("({pairing})")) || first.stdout.contains(pairing),
                "{pairing}: {}",
                first.stdout
            );
        }
        let members = |group: &str| {
            let mut names: Vec<String> = server
                .group_members(group)
                .iter()
                .filter_map(|id| server.users().into_iter().find(|u| u["id"] == id.as_str()))
                .map(|u| u["userName"].as_str().unwrap().to_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(members("Sales"), ["ann@x.example", "bo@x.example"]);
        assert_eq!(members("Billing"), ["cy@x.example"]);
        assert_eq!(members("Support"), ["ann@x.example", "di@x.example"]);
        assert!(members("Other").is_empty(), "a group the pattern does not match is no pairing");

        let again = run_async(dir.path(), &apply, &env).await;
        assert!(again.stdout.contains("No changes."), "{}", again.stdout);

        // A fourth `GC-` group appears in Entra: the next run creates its target group.
        let four = [
            ("GC-Sales", sales),
            ("GC-Billing", &["cy"][..]),
            ("GC-Support", &["ann", "di"][..]),
            ("GC-Quality", &["bo"][..]),
        ];
        mount(&graph, &four).await;
        server.reset_writes();
        let fourth = run_async(dir.path(), &apply, &env).await;
        assert_eq!(fourth.code, 0, "{}", fourth.all());
        assert_eq!(members("Quality"), ["bo@x.example"]);
        assert_eq!(server.writes(), 1, "one POST /Groups: {}", fourth.all());
    }
}

mod group_pattern_leaves {
    use super::*;

    const USERS: &str = "  attributes:\n    userName: mail\ngroups:\n  - { name: 'gc-{{ match.1 }}', source: hr, from: { name_matches: '^GC-(.+)$' }, to: { display_name: '{{ match.1 }}' }, create: true }\n";

    fn people(groups: &[&str]) -> String {
        let groups: String = groups
            .iter()
            .map(|g| format!("  - {{id: '{g}', name: 'GC-{g}', members: ['1']}}\n"))
            .collect::<Vec<_>>()
            .concat();
        format!("users:\n  - {{id: '1', mail: ann@x.example}}\ngroups:\n{groups}")
    }

    /// A source group that stops matching is no pairing any more: its target group stays as it
    /// is, and the plan says so (the state remembers which pairings the pattern made).
    #[tokio::test]
    async fn a_group_that_stops_matching_is_left_alone_and_the_plan_says_so() {
        let server = MemoryServer::start(MemoryStore::new(Some(TOKEN))).await.unwrap();
        let dir = workspace(&[("m.yaml", &manifest(USERS)), ("people.yaml", &people(&["Sales", "Billing"]))]);
        let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env(&server)).await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        assert_eq!(server.group_members("Billing").len(), 1);

        std::fs::write(dir.path().join("people.yaml"), people(&["Sales"])).unwrap();
        server.reset_writes();
        let planned = run_async(dir.path(), &["plan", "-f", "m.yaml"], &env(&server)).await;
        assert!(planned.stdout.contains("No changes."), "{}", planned.stdout);
        assert!(
            planned.stderr.contains("pairing `gc-Billing` no longer matches a source group: its target group (displayName `Billing`) is left as it is, never deleted"),
            "{}",
            planned.stderr
        );
        let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env(&server)).await;
        assert_eq!(applied.code, 0, "{}", applied.all());
        assert_eq!(server.writes(), 0);
        assert_eq!(server.group_members("Billing").len(), 1, "left as it is");
        // Said once: the state now knows the pattern no longer makes it.
        let again = run_async(dir.path(), &["plan", "-f", "m.yaml"], &env(&server)).await;
        assert!(!again.stderr.contains("gc-Billing"), "{}", again.stderr);
    }
}
