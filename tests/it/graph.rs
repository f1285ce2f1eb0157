//! The Graph source against wiremock with realistic bodies: paging by `@odata.nextLink`,
//! throttling, 5xx, token expiry, nested groups, `$select`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use scimform::http::retry::Backoff;
use scimform::manifest::model::{GraphConfig, GraphCredential, GroupSelector};
use scimform::secret::Secret;
use scimform::source::{AttrValue, GraphSource, Resume, SourceRead, SourceRecord};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::graph_double::{graph_server, refusals};

pub fn graph_config(server: &MockServer) -> GraphConfig {
    GraphConfig {
        tenant_id: "contoso".into(),
        client_id: "app-id".into(),
        credential: GraphCredential::ClientSecret(Secret::new("app-secret")),
        authority: Some(format!("{}/contoso/oauth2/v2.0/token", server.uri())),
        graph_url: Some(format!("{}/v1.0", server.uri())),
        filter: None,
        ca_file: None,
    }
}

pub fn user(i: usize) -> Value {
    json!({"id": format!("00000000-0000-0000-0000-{i:012}"), "mail": format!("User{i}@contoso.example"),
           "userPrincipalName": format!("user{i}@contoso.example"), "accountEnabled": !i.is_multiple_of(5)})
}

fn page(users: &[Value], next: Option<String>) -> Value {
    let mut body = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": users});
    if let Some(next) = next {
        body["@odata.nextLink"] = json!(next);
    }
    body
}

/// A source that serves users (so it reads `disabled`) and whose mappings read `wanted`.
fn source(server: &MockServer, wanted: &[&str]) -> GraphSource {
    let wanted: BTreeSet<String> = wanted.iter().chain(&["disabled"]).map(|s| (*s).to_owned()).collect();
    GraphSource::new("entra", &graph_config(server), &wanted)
        .unwrap()
        .with_backoff(Backoff { base: Duration::from_millis(20), cap: Duration::from_millis(100) })
}

fn mails(records: &[SourceRecord]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .filter_map(|r| match r.get("mail") {
            Some(AttrValue::Text(m)) => Some(m.clone()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn three_pages_of_users_with_exactly_the_mapped_attributes() {
    let server = graph_server().await;
    let users: Vec<Value> = (0..7).map(user).collect();
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param("$select", "accountEnabled,id,mail,userPrincipalName"))
        .and(query_param("$top", "999"))
        .and(header("authorization", "Bearer graph-token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(&users[..3], Some(format!("{}/v1.0/users?$skiptoken=page2", server.uri())))),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param("$skiptoken", "page2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(&users[3..6], Some(format!("{}/v1.0/users?$skiptoken=page3", server.uri())))),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param("$skiptoken", "page3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&users[6..], None)))
        .expect(1)
        .mount(&server)
        .await;
    let records = source(&server, &["mail", "userPrincipalName"]).users().await.unwrap();
    assert_eq!(records.len(), 7);
    assert_eq!(records.iter().filter(|r| r.disabled).count(), 2, "accountEnabled: false for users 0 and 5");
}

/// A mapped `manager` is a navigation property: expanded (ids only), never selected, and read as
/// the manager's id, which a `reference` mapping resolves to the manager's target id.
#[tokio::test]
async fn managers_are_expanded_to_their_ids() {
    let server = graph_server().await;
    let mut worker = user(2);
    worker["manager"] = json!({"@odata.type": "#microsoft.graph.user", "id": user(1)["id"]});
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(query_param("$select", "accountEnabled,id,mail"))
        .and(query_param("$expand", "manager($select=id)"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&[user(1), worker], None)))
        .expect(1)
        .mount(&server)
        .await;
    let records = source(&server, &["mail", "manager"]).users().await.unwrap();
    assert_eq!(records[1].get("manager"), Some(&AttrValue::Text("00000000-0000-0000-0000-000000000001".into())));
    assert_eq!(records[0].get("manager"), None, "no manager, no attribute");
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let server = graph_server().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "2")
                .set_body_json(json!({"error": {"code": "TooManyRequests", "message": "slow down"}})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&[user(1)], None)))
        .mount(&server)
        .await;
    let started = Instant::now();
    let records = source(&server, &["mail"]).users().await.unwrap();
    assert_eq!(records.len(), 1);
    assert!(started.elapsed() >= Duration::from_millis(1950), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_503_is_retried() {
    let server = graph_server().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&[user(1)], None)))
        .mount(&server)
        .await;
    assert_eq!(source(&server, &["mail"]).users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once() {
    let server = MockServer::start().await;
    refusals(&server).await;
    Mock::given(method("POST"))
        .and(path("/contoso/oauth2/v2.0/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"expires_in": 3599, "access_token": "expired"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/contoso/oauth2/v2.0/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"expires_in": 3599, "access_token": "fresh"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer expired"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"error": {"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed"}}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer fresh"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&[user(1)], None)))
        .mount(&server)
        .await;
    assert_eq!(source(&server, &["mail"]).users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn nested_members_come_from_transitive_members_users_only() {
    let server = graph_server().await;
    let group_id = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/groups/{group_id}")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": group_id, "displayName": "Support Tier 1"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/groups/{group_id}/transitiveMembers/microsoft.graph.user")))
        .and(query_param("$select", "accountEnabled,id,mail"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&[user(1), user(2), user(3)], None)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/groups/{group_id}/members/microsoft.graph.user")))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&[user(1)], None)))
        .expect(1)
        .mount(&server)
        .await;
    let mut source = source(&server, &["mail"]);
    let nested = source.group(&GroupSelector::Id(group_id.into()), true).await.unwrap();
    assert_eq!(nested.name, "Support Tier 1");
    assert_eq!(mails(&nested.members), ["User1@contoso.example", "User2@contoso.example", "User3@contoso.example"]);
    let direct = source.group(&GroupSelector::Id(group_id.into()), false).await.unwrap();
    assert_eq!(mails(&direct.members), ["User1@contoso.example"]);
}

#[tokio::test]
async fn groups_by_display_name_are_resolved_once_and_ambiguity_is_an_error() {
    let server = graph_server().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups"))
        .and(query_param("$filter", "displayName eq 'Sales'"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"value": [{"id": "g-sales", "displayName": "Sales"}]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups"))
        .and(query_param("$filter", "displayName eq 'O''Brien team'"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [{"id": "g1"}, {"id": "g2"}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/g-sales/members/microsoft.graph.user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&[user(4)], None)))
        .mount(&server)
        .await;
    let mut source = source(&server, &["mail"]);
    let sales = source.group(&GroupSelector::Name("Sales".into()), false).await.unwrap();
    assert_eq!(sales.id, "g-sales");
    let error = source.group(&GroupSelector::Name("O'Brien team".into()), false).await.unwrap_err();
    assert_eq!(error.to_string(), "source `entra`: 2 groups are named `O'Brien team`");
    assert_eq!(error.hint().as_deref(), Some("name the group by `id` instead"));
}

mod end_to_end {
    use std::fmt::Write;

    use scimform::service::memory::{MemoryServer, MemoryStore};
    use serde_json::{Value, json};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::{page, user};
    use crate::common::{run_async, workspace};
    use crate::graph_double::{graph_server, mount_graph};

    const GROUP: &str = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";

    async fn mount_members(graph: &MockServer, members: &[Value]) {
        graph.reset().await;
        mount_graph(graph).await;
        Mock::given(method("GET"))
            .and(path(format!("/v1.0/groups/{GROUP}")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"id": GROUP, "displayName": "Support Tier 1"})),
            )
            .mount(graph)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/v1.0/groups/{GROUP}/transitiveMembers/microsoft.graph.user")))
            .respond_with(ResponseTemplate::new(200).set_body_json(page(members, None)))
            .mount(graph)
            .await;
    }

    /// Users from an HR file, membership from Entra: members join users by their mail. (Without
    /// state: transitive members read in full; `a_nested_group_is_followed_by_each_member_group_s_delta`
    /// covers the same pairing read by delta.)
    #[tokio::test]
    async fn entra_groups_over_file_users_converge_and_one_removed_member_is_one_remove() {
        let graph = graph_server().await;
        mount_members(&graph, &[user(1), user(2), user(3), user(99)]).await;
        let mut store = MemoryStore::new(Some("tok"));
        let group_id = store.insert_group("Support", &[]);
        let scim = MemoryServer::start(store).await.unwrap();
        let mut people = String::from("users:\n");
        for i in 1..=5 {
            let _ = writeln!(people, "  - {{id: 'e{i}', mail: 'User{i}@contoso.example'}}");
        }
        let manifest = format!(
            r#"version: 1
sources:
  hr: {{ kind: file, path: people.yaml }}
  entra:
    kind: graph
    tenant_id: contoso
    client_id: app-id
    client_secret: ${{env:GRAPH_SECRET}}
    authority: {graph}/contoso/oauth2/v2.0/token
    graph_url: {graph}/v1.0
target:
  kind: scim
  base_url: {scim}
  auth: {{ bearer_token: tok }}
users:
  source: hr
  external_id: "hr-{{{{ id }}}}"
  attributes:
    userName: "{{{{ mail | lower }}}}"
groups:
  - name: Support
    source: entra
    from: {{ id: {GROUP} }}
    nested: true
    member_key: "{{{{ mail | lower }}}}"
    to: {{ display_name: Support }}
"#,
            graph = graph.uri(),
            scim = scim.base_url(),
        );
        let dir = workspace(&[("m.yaml", &manifest), ("people.yaml", &people)]);
        let env = [("GRAPH_SECRET", "app-secret")];

        let first = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve", "--no-state"], &env).await;
        assert_eq!(first.code, 0, "{}", first.all());
        assert!(first.stdout.contains("+ member \"user3@contoso.example\" (known after apply)"), "{}", first.stdout);
        assert!(first.stderr.contains("member `user99@contoso.example` matches no user"), "{}", first.all());
        assert_eq!(scim.group_members("Support").len(), 3);

        scim.reset_writes();
        let second = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve", "--no-state"], &env).await;
        assert_eq!(second.code, 0, "{}", second.all());
        assert!(second.stdout.starts_with("No changes."), "{}", second.stdout);
        assert_eq!(scim.writes(), 0);

        mount_members(&graph, &[user(1), user(2), user(99)]).await;
        let third = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve", "--no-state"], &env).await;
        assert_eq!(third.code, 0, "{}", third.all());
        let writes = scim.recorded_writes();
        assert_eq!(writes.len(), 1, "{writes:?}");
        let user3 = scim.user("user3@contoso.example").unwrap()["id"].as_str().unwrap().to_owned();
        assert_eq!(writes[0].path, format!("/Groups/{group_id}"));
        assert_eq!(
            writes[0].body.as_ref().unwrap()["Operations"],
            json!([{"op": "remove", "path": format!("members[value eq \"{user3}\"]")}])
        );
    }
}

/// A Graph source that serves only a group (users from a file), with the state beside the
/// manifest: the first run syncs its users and the group by delta; the next reads only the
/// changes through the kept links, and a member `@removed` in Entra is one `remove` in the target.
#[tokio::test]
async fn a_group_only_source_reads_its_group_by_delta_with_a_state() {
    use std::fmt::Write;

    use scimform::service::memory::{MemoryServer, MemoryStore};
    use wiremock::matchers::query_param_is_missing;

    use crate::common::{run_async, workspace};
    const GROUP: &str = "3f1e6d2c-0000-4000-8000-00000000b111";
    let graph = graph_server().await;
    let uri = graph.uri();
    let id = |i: usize| user(i)["id"].as_str().unwrap().to_owned();
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/groups/{GROUP}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": GROUP, "displayName": "Billing"})))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param_is_missing("$deltatoken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": (1..=4).map(user).collect::<Vec<_>>(),
            "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u1")})))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/delta"))
        .and(query_param_is_missing("$deltatoken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": GROUP, "members@delta": [{"id": id(1)}, {"id": id(2)}, {"id": id(3)}]}],
            "@odata.deltaLink": format!("{uri}/v1.0/groups/delta?$deltatoken=g1")})))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param("$deltatoken", "u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [], "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u2")})))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/delta"))
        .and(query_param("$deltatoken", "g1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": GROUP, "members@delta": [{"id": id(2), "@removed": {"reason": "deleted"}}]}],
            "@odata.deltaLink": format!("{uri}/v1.0/groups/delta?$deltatoken=g2")})))
        .expect(1)
        .mount(&graph)
        .await;
    let mut store = MemoryStore::new(Some("tok"));
    let group_id = store.insert_group("Billing", &[]);
    let scim = MemoryServer::start(store).await.unwrap();
    let mut people = String::from("users:\n");
    for i in 1..=4 {
        let _ = writeln!(people, "  - {{id: 'e{i}', mail: 'User{i}@contoso.example'}}");
    }
    let manifest = format!(
        "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\n  entra:\n    kind: graph\n    tenant_id: contoso\n    client_id: app-id\n    client_secret: ${{env:GRAPH_SECRET}}\n    authority: {uri}/contoso/oauth2/v2.0/token\n    graph_url: {uri}/v1.0\ntarget:\n  kind: scim\n  base_url: {scim}\n  auth: {{ bearer_token: tok }}\nusers:\n  source: hr\n  external_id: \"hr-{{{{ id }}}}\"\n  attributes:\n    userName: \"{{{{ mail | lower }}}}\"\ngroups:\n  - name: Billing\n    source: entra\n    from: {{ id: {GROUP} }}\n    member_key: \"{{{{ mail | lower }}}}\"\n    to: {{ display_name: Billing }}\n",
        scim = scim.base_url(),
    );
    let dir = workspace(&[("m.yaml", &manifest), ("people.yaml", &people)]);
    let env = [("GRAPH_SECRET", "app-secret")];

    let first = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(first.stderr.contains("Source `entra` read in full (4 users)."), "{}", first.stderr);
    assert_eq!(scim.group_members("Billing").len(), 3);

    scim.reset_writes();
    let second = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        second.stderr.contains("Source `entra` read incrementally: 0 changed user(s) read, 0 left the scope; 0 group(s) read in full, 1 carried on from the last run."),
        "{}",
        second.stderr
    );
    let writes = scim.recorded_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let user2 = scim.user("user2@contoso.example").unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(writes[0].path, format!("/Groups/{group_id}"));
    assert_eq!(
        writes[0].body.as_ref().unwrap()["Operations"],
        json!([{"op": "remove", "path": format!("members[value eq \"{user2}\"]")}])
    );
}

/// A 20,000-member group that gains 6 members and loses 4 is one PATCH with those 10 changes.
#[tokio::test]
async fn a_large_group_changes_by_delta_not_by_replacement() {
    use std::fmt::Write;

    use scimform::service::memory::{MemoryServer, MemoryStore};

    use crate::common::{run_async, workspace};

    const MEMBERS: usize = 20_000;
    let mut store = MemoryStore::new(Some("tok"));
    let mut ids = Vec::new();
    let mut people = String::from("users:\n");
    for i in 0..MEMBERS + 4 {
        ids.push(store.insert_user(
            json!({"userName": format!("u{i}@x.example"), "externalId": format!("hr-{i}"), "active": true}),
        ));
        let _ = writeln!(people, "  - {{id: '{i}', mail: u{i}@x.example}}");
    }
    people.push_str("groups:\n  - id: big\n    members:\n");
    for i in 0..MEMBERS {
        let _ = writeln!(people, "      - '{i}'");
    }
    // The target lacks the last 6 source members and holds 4 users the source does not list.
    let current: Vec<&str> = ids[..MEMBERS - 6].iter().chain(&ids[MEMBERS..]).map(String::as_str).collect();
    let group_id = store.insert_group("Big", &current);
    let scim = MemoryServer::start(store).await.unwrap();
    let manifest = format!(
        "version: 1\nsources:\n  hr: {{ kind: file, path: people.yaml }}\ntarget:\n  kind: scim\n  base_url: {}\n  auth: {{ bearer_token: tok }}\nusers:\n  source: hr\n  external_id: \"hr-{{{{ id }}}}\"\n  attributes:\n    userName: \"{{{{ mail | lower }}}}\"\ngroups:\n  - {{ name: Big, source: hr, from: {{ id: big }}, to: {{ id: \"{group_id}\" }}, method: patch }}\n",
        scim.base_url()
    );
    let dir = workspace(&[("m.yaml", &manifest), ("people.yaml", &people)]);
    let applied = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &[]).await;
    assert_eq!(applied.code, 0, "{}", applied.all());
    let writes = scim.recorded_writes();
    assert_eq!(writes.len(), 1, "one request");
    assert_eq!((writes[0].method.as_str(), writes[0].path.as_str()), ("PATCH", format!("/Groups/{group_id}").as_str()));
    let operations = writes[0].body.as_ref().unwrap()["Operations"].as_array().unwrap().clone();
    let added: Vec<&str> =
        operations[0]["value"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    assert_eq!(added, ids[MEMBERS - 6..MEMBERS].iter().map(String::as_str).collect::<Vec<_>>());
    let removed: Vec<String> = operations[1..].iter().map(|op| op["path"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = ids[MEMBERS..].iter().map(|id| format!("members[value eq \"{id}\"]")).collect();
    assert_eq!(removed, expected);
    assert_eq!(operations.len(), 5, "one add of 6 members and 4 removes: 10 member changes");
    assert_eq!(scim.group_members("Big").len(), MEMBERS);
}

/// Delta queries with a state: the first run reads everything through `/users/delta` and the
/// group's own delta and keeps both delta links; the next reuses them and applies only the
/// changes (a changed user merged over its record, an `@removed` user and member gone, a new
/// member); an expired token (`410 Gone`, `syncStateNotFound`) restarts a full sync.
#[tokio::test]
async fn delta_links_are_reused_removed_members_leave_and_410_restarts_a_full_sync() {
    use scimform::source::ReadKind;
    use wiremock::matchers::query_param_is_missing;
    let server = graph_server().await;
    let uri = server.uri();
    let group = "a1b2c3d4-e5f6-7890-abcd-ef1234567890";
    let users: Vec<Value> = (0..5).map(user).collect();
    let id = |i: usize| user(i)["id"].as_str().unwrap().to_owned();

    // A full sync: two pages, then the delta link.
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param("$select", "accountEnabled,id,mail,userPrincipalName"))
        .and(query_param_is_missing("$deltatoken"))
        .and(query_param_is_missing("$skiptoken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": users[..3], "@odata.nextLink": format!("{uri}/v1.0/users/delta?$skiptoken=p2")})))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param("$skiptoken", "p2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": users[3..], "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=t1")})))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/groups/{group}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": group, "displayName": "Support"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/delta"))
        .and(query_param("$filter", format!("id eq '{group}'")))
        .and(query_param("$select", "members"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": group, "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": id(1)},
                {"@odata.type": "#microsoft.graph.user", "id": id(2)},
                {"@odata.type": "#microsoft.graph.group", "id": "a-nested-group"}]}],
            "@odata.deltaLink": format!("{uri}/v1.0/groups/delta?$deltatoken=g1")})))
        .expect(1)
        .mount(&server)
        .await;
    let selector = GroupSelector::Id(group.into());
    let mut graph = source(&server, &["mail", "userPrincipalName"]).resuming(Resume::From(None));
    assert_eq!(graph.users().await.unwrap().len(), 5);
    let support = graph.group(&selector, false).await.unwrap();
    assert_eq!(support.members.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), [id(1), id(2)]);
    let SourceRead { cache, kind } = graph.finish().unwrap();
    assert_eq!(kind, ReadKind::Full { entries: 5, reason: None });

    // The next run: only the changes, through the delta links the first one kept.
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param("$deltatoken", "t1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [
                {"id": id(3), "mail": "Renamed3@contoso.example"},
                {"id": id(4), "@removed": {"reason": "deleted"}}],
            "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=t2")})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/delta"))
        .and(query_param("$deltatoken", "g1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": group, "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": id(2), "@removed": {"reason": "deleted"}},
                {"@odata.type": "#microsoft.graph.user", "id": id(3)}]}],
            "@odata.deltaLink": format!("{uri}/v1.0/groups/delta?$deltatoken=g2")})))
        .expect(1)
        .mount(&server)
        .await;
    let mut graph = source(&server, &["mail", "userPrincipalName"]).resuming(Resume::From(Some(cache)));
    let users = graph.users().await.unwrap();
    assert_eq!(users.len(), 4, "the deleted user left");
    let three = users.iter().find(|u| u.id == id(3)).unwrap();
    assert_eq!(three.get("mail"), Some(&AttrValue::Text("Renamed3@contoso.example".into())));
    assert_eq!(
        three.get("userPrincipalName"),
        Some(&AttrValue::Text("user3@contoso.example".into())),
        "a change carrying only what changed keeps the rest"
    );
    let support = graph.group(&selector, false).await.unwrap();
    assert_eq!(support.members.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), [id(1), id(3)]);
    let SourceRead { cache, kind } = graph.finish().unwrap();
    assert_eq!(
        kind.to_string(),
        ReadKind::Incremental { changed: 1, removed: 1, groups_read: 0, groups_reused: 1 }.to_string()
    );
    assert_eq!(cache.watermark["users"], json!(format!("{uri}/v1.0/users/delta?$deltatoken=t2")));
    let group_links: Vec<&Value> = cache.watermark["groups"].as_object().unwrap().values().collect();
    assert_eq!(group_links, [&json!(format!("{uri}/v1.0/groups/delta?$deltatoken=g2"))]);

    // The token expired: a full sync, said so.
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param("$deltatoken", "t2"))
        .respond_with(ResponseTemplate::new(410).set_body_json(json!({
            "error": {"code": "syncStateNotFound", "message": "The sync state is no longer valid."}})))
        .expect(1)
        .mount(&server)
        .await;
    let mut graph = source(&server, &["mail", "userPrincipalName"]).resuming(Resume::From(Some(cache)));
    assert_eq!(graph.users().await.unwrap().len(), 5, "everything, from the full sync");
    match graph.finish().map(|read| read.kind) {
        Some(ReadKind::Full { entries: 5, reason: Some(reason) }) => {
            assert!(reason.contains("the delta token expired (HTTP 410 syncStateNotFound)"), "{reason}");
        }
        other => panic!("expected a full sync, got {other:?}"),
    }
}

/// The Graph double of a nested pairing by delta: the top group holds user 1 and the inner group,
/// the inner group user 2 and (a cycle) the top group; the users by delta; on the next run the
/// inner group's delta removes user 2 and adds user 3. `times`: how often each group delta may be
/// asked for.
async fn mount_nested_groups(
    server: &MockServer,
    times: std::ops::RangeInclusive<u64>,
) -> (&'static str, &'static str) {
    use wiremock::matchers::query_param_is_missing;
    let uri = server.uri();
    let id = |i: usize| user(i)["id"].as_str().unwrap().to_owned();
    let (top, inner) = ("top-group", "inner-group");
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/groups/{top}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": top, "displayName": "Support"})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param_is_missing("$deltatoken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": (1..=4).map(user).collect::<Vec<_>>(),
            "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u1")})))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param("$deltatoken", "u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [], "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u1")})))
        .mount(server)
        .await;
    for (group, members, token) in [
        (
            top,
            json!([{"@odata.type": "#microsoft.graph.user", "id": id(1)}, {"@odata.type": "#microsoft.graph.group", "id": inner}]),
            "t1",
        ),
        (
            inner,
            json!([{"@odata.type": "#microsoft.graph.user", "id": id(2)}, {"@odata.type": "#microsoft.graph.group", "id": top}]),
            "i1",
        ),
    ] {
        Mock::given(method("GET"))
            .and(path("/v1.0/groups/delta"))
            .and(query_param("$filter", format!("id eq '{group}'")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "value": [{"id": group, "members@delta": members}],
                "@odata.deltaLink": format!("{uri}/v1.0/groups/delta?$deltatoken={token}")})))
            .expect(times.clone())
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/delta"))
        .and(query_param("$deltatoken", "t1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [], "@odata.deltaLink": format!("{uri}/v1.0/groups/delta?$deltatoken=t2")})))
        .expect(times.clone())
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/delta"))
        .and(query_param("$deltatoken", "i1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": inner, "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": id(2), "@removed": {"reason": "deleted"}},
                {"@odata.type": "#microsoft.graph.user", "id": id(3)}]}],
            "@odata.deltaLink": format!("{uri}/v1.0/groups/delta?$deltatoken=i2")})))
        .expect(times.clone())
        .mount(server)
        .await;
    (top, inner)
}

/// A nested pairing by delta: the group's own delta and each member group's (transitive members
/// have none). A user who leaves the nested group and one who joins it change only that group's
/// delta, and the nested membership follows.
#[tokio::test]
async fn a_nested_group_is_followed_by_each_member_group_s_delta() {
    use scimform::source::ReadKind;
    let server = graph_server().await;
    let (top, _) = mount_nested_groups(&server, 1..=1).await;
    let id = |i: usize| user(i)["id"].as_str().unwrap().to_owned();
    let selector = GroupSelector::Id(top.into());
    let members =
        |group: &scimform::source::SourceGroup| group.members.iter().map(|m| m.id.clone()).collect::<Vec<_>>();

    let mut graph = source(&server, &["mail"]).resuming(Resume::From(None));
    let first = graph.group(&selector, true).await.unwrap();
    assert_eq!(members(&first), [id(1), id(2)], "through the member group; the cycle back to the top ends");
    let cache = graph.finish().unwrap().cache;

    let mut graph = source(&server, &["mail"]).resuming(Resume::From(Some(cache)));
    let second = graph.group(&selector, true).await.unwrap();
    assert_eq!(members(&second), [id(1), id(3)]);
    assert_eq!(
        graph.finish().map(|read| read.kind),
        Some(ReadKind::Incremental { changed: 0, removed: 0, groups_read: 0, groups_reused: 2 })
    );
}

/// Two pairings from one Entra source, read at once: each is what reading it alone gives, in
/// the order asked; what both delta queries leave is remembered, so the next run follows the
/// shared inner group's changes in both.
#[tokio::test]
async fn several_groups_of_one_source_are_read_at_once_and_remembered_each() {
    let server = graph_server().await;
    let (top, inner) = mount_nested_groups(&server, 1..=2).await;
    let id = |i: usize| user(i)["id"].as_str().unwrap().to_owned();
    let wanted = [(GroupSelector::Id(top.into()), true), (GroupSelector::Id(inner.into()), false)];
    let members =
        |group: &scimform::source::SourceGroup| group.members.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    let inner_group = json!({"id": inner, "displayName": "Inner"});
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/groups/{inner}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(inner_group))
        .mount(&server)
        .await;

    let mut graph = source(&server, &["mail"]).resuming(Resume::From(None));
    let first: Vec<_> = graph.groups(&wanted).await.unwrap().into_iter().map(|g| members(&g.unwrap())).collect();
    assert_eq!(first, [vec![id(1), id(2)], vec![id(2)]], "each as read alone, in the order asked");
    let cache = graph.finish().unwrap().cache;

    let mut graph = source(&server, &["mail"]).resuming(Resume::From(Some(cache)));
    let second: Vec<_> = graph.groups(&wanted).await.unwrap().into_iter().map(|g| members(&g.unwrap())).collect();
    assert_eq!(second, [vec![id(1), id(3)], vec![id(3)]], "both follow the inner group's delta");
}

/// The old scripts' combined job: people from Active Directory (Samba), team membership from
/// Entra groups, with the state on by default. The Graph source serves only the group, so it
/// selects only what the pairing's `member_key` reads (and `id`): the strict double refuses
/// the users' AD attributes (`objectGUID`, `sn`) with Graph's own 400, as Microsoft does. The
/// first run reads both sources in full; a member removed in Entra is exactly one write.
#[tokio::test]
async fn ad_users_with_entra_groups_by_delta_select_only_what_graph_has() {
    use std::collections::HashSet;

    use scimform::service::memory::{MemoryServer, MemoryStore};
    use wiremock::matchers::query_param_is_missing;

    use crate::common::{run_async, workspace};
    use crate::ldap::{ad, admin, fresh_ou};
    const GROUP: &str = "3f1e6d2c-0000-4000-8000-00000000b111";

    let ad = ad();
    let mut ldap = admin().await;
    let ou = fresh_ou(&mut ldap, "AdEntra").await;
    let digits: String = ou[..ou.find(',').unwrap()].chars().rev().take(8).collect();
    let mut mails = Vec::new();
    for given in ["Ann", "Bob", "Cid"] {
        let sam = format!("e{digits}{given}");
        let mail = format!("{sam}@corp.test");
        let attributes = vec![
            ("objectClass", HashSet::from(["user"])),
            ("sAMAccountName", HashSet::from([sam.as_str()])),
            ("mail", HashSet::from([mail.as_str()])),
            ("sn", HashSet::from([given])),
            ("userAccountControl", HashSet::from(["544"])),
        ];
        ldap.add(&format!("CN={given},{ou}"), attributes).await.unwrap().success().unwrap();
        mails.push(mail);
    }
    // The same people in Entra, by their Graph ids.
    let entra = |i: usize| json!({"id": format!("entra-{i}"), "mail": mails[i].to_uppercase()});
    let graph = graph_server().await;
    let uri = graph.uri();
    Mock::given(method("GET"))
        .and(path(format!("/v1.0/groups/{GROUP}")))
        .and(query_param("$select", "id,displayName"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": GROUP, "displayName": "Billing"})))
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param("$select", "id,mail"))
        .and(query_param_is_missing("$deltatoken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": (0..3).map(entra).collect::<Vec<_>>(),
            "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u1")})))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/delta"))
        .and(query_param("$filter", format!("id eq '{GROUP}'")))
        .and(query_param("$select", "members"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": GROUP, "members@delta": [{"id": "entra-0"}, {"id": "entra-1"}, {"id": "entra-2"}]}],
            "@odata.deltaLink": format!("{uri}/v1.0/groups/delta?$deltatoken=g1")})))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param("$deltatoken", "u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [], "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u2")})))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/groups/delta"))
        .and(query_param("$deltatoken", "g1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": GROUP, "members@delta": [{"id": "entra-1", "@removed": {"reason": "deleted"}}]}],
            "@odata.deltaLink": format!("{uri}/v1.0/groups/delta?$deltatoken=g2")})))
        .expect(1)
        .mount(&graph)
        .await;
    let mut store = MemoryStore::new(Some("tok"));
    let group_id = store.insert_group("Billing", &[]);
    let scim = MemoryServer::start(store).await.unwrap();
    let manifest = format!(
        r#"version: 1
sources:
  corp_ad:
    kind: ldap
    url: {url}
    bind_dn: {bind_dn}
    password: ${{env:AD_PASSWORD}}
    base_dn: "{ou}"
  entra:
    kind: graph
    tenant_id: contoso
    client_id: app-id
    client_secret: ${{env:GRAPH_SECRET}}
    authority: {uri}/contoso/oauth2/v2.0/token
    graph_url: {uri}/v1.0
target:
  kind: scim
  base_url: {scim}
  auth: {{ bearer_token: tok }}
users:
  source: corp_ad
  external_id: "{{{{ objectGUID }}}}"
  attributes:
    userName: "{{{{ mail | lower }}}}"
    name.familyName: sn
groups:
  - name: Billing
    source: entra
    from: {{ id: {GROUP} }}
    member_key: "{{{{ mail | lower }}}}"
    to: {{ display_name: Billing }}
"#,
        url = ad.url,
        bind_dn = ad.bind_dn,
        scim = scim.base_url(),
    );
    let dir = workspace(&[("m.yaml", &manifest)]);
    let env = [("AD_PASSWORD", ad.password.as_str()), ("GRAPH_SECRET", "app-secret")];
    let apply = ["apply", "-f", "m.yaml", "--auto-approve"];

    let first = run_async(dir.path(), &apply, &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(first.stderr.contains("Source `corp_ad` read in full (3 users)."), "{}", first.stderr);
    assert!(first.stderr.contains("Source `entra` read in full (3 users)."), "{}", first.stderr);
    assert_eq!(scim.group_members("Billing").len(), 3);

    scim.reset_writes();
    let second = run_async(dir.path(), &apply, &env).await;
    assert_eq!(second.code, 0, "{}", second.all());
    let writes = scim.recorded_writes();
    assert_eq!(writes.len(), 1, "{writes:?}\n{}", second.all());
    let bob = scim.user(&mails[1].to_lowercase()).unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(writes[0].path, format!("/Groups/{group_id}"));
    assert_eq!(
        writes[0].body.as_ref().unwrap()["Operations"],
        json!([{"op": "remove", "path": format!("members[value eq \"{bob}\"]")}])
    );
}

/// Skills and division kept where Entra customers keep them: `onPremisesExtensionAttributes`
/// and `employeeOrgData`, read as dotted names, selected by their top-level property (the
/// strict double refuses a dotted `$select`), kept across delta reads (a change carries the
/// whole complex property), mapped to a SCIM attribute and to Genesys routing skills. The
/// run converges, then has nothing to do; a changed extension attribute is one PATCH.
#[tokio::test]
async fn nested_graph_properties_map_to_attributes_and_skills_through_delta() {
    use scimform::service::memory::{MemoryServer, MemoryStore};
    use wiremock::matchers::query_param_is_missing;

    use crate::common::{run_async, workspace};
    const EXT: &str = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    let graph = graph_server().await;
    let uri = graph.uri();
    let person = |i: usize, skills: &str| {
        json!({"id": format!("entra-{i}"), "userPrincipalName": format!("agent{i}@contoso.example"),
               "accountEnabled": true,
               "onPremisesExtensionAttributes": {"extensionAttribute1": null, "extensionAttribute3": skills},
               "employeeOrgData": {"division": format!("Division {i}"), "costCenter": null}})
    };
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param(
            "$select",
            "accountEnabled,employeeOrgData,id,onPremisesExtensionAttributes,userPrincipalName",
        ))
        .and(query_param_is_missing("$deltatoken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [person(1, "Billing:3;Sales:2"), person(2, "Sales:4")],
            "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u1")})))
        .expect(1)
        .mount(&graph)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param("$deltatoken", "u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [], "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u2")})))
        .expect(1)
        .mount(&graph)
        .await;
    // A delta change carries the complex property whole, with only what changed in it.
    Mock::given(method("GET"))
        .and(path("/v1.0/users/delta"))
        .and(query_param("$deltatoken", "u2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"id": "entra-2", "onPremisesExtensionAttributes": {"extensionAttribute3": "Sales:5"}}],
            "@odata.deltaLink": format!("{uri}/v1.0/users/delta?$deltatoken=u3")})))
        .expect(1)
        .mount(&graph)
        .await;
    let scim = MemoryServer::start(MemoryStore::new(Some("tok"))).await.unwrap();
    let manifest = format!(
        r#"version: 1
sources:
  entra:
    kind: graph
    tenant_id: contoso
    client_id: app-id
    client_secret: ${{env:GRAPH_SECRET}}
    authority: {uri}/contoso/oauth2/v2.0/token
    graph_url: {uri}/v1.0
target:
  kind: scim
  profile: genesys
  base_url: {scim}
  auth: {{ bearer_token: tok }}
users:
  source: entra
  external_id: "{{{{ id }}}}"
  attributes:
    userName: "{{{{ userPrincipalName | lower }}}}"
    title: "Skills {{{{ onPremisesExtensionAttributes.extensionAttribute3 }}}}"
    {ENTERPRISE}:division: employeeOrgData.division
  sets:
    {EXT}:routingSkills:
      from: onPremisesExtensionAttributes.extensionAttribute3
"#,
        scim = scim.base_url(),
    );
    let dir = workspace(&[("m.yaml", &manifest)]);
    let env = [("GRAPH_SECRET", "app-secret")];
    let apply = ["apply", "-f", "m.yaml", "--auto-approve"];

    let first = run_async(dir.path(), &apply, &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let agent1 = scim.user("agent1@contoso.example").unwrap();
    assert_eq!(agent1["title"], "Skills Billing:3;Sales:2");
    assert_eq!(agent1[ENTERPRISE]["division"], "Division 1");
    assert_eq!(
        agent1[EXT]["routingSkills"],
        json!([{"name": "Billing", "proficiency": 3.0}, {"name": "Sales", "proficiency": 2.0}])
    );

    scim.reset_writes();
    let second = run_async(dir.path(), &apply, &env).await;
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(second.stdout.starts_with("No changes."), "{}", second.all());
    assert_eq!(scim.writes(), 0);

    let third = run_async(dir.path(), &apply, &env).await;
    assert_eq!(third.code, 0, "{}", third.all());
    assert_eq!(scim.writes(), 1, "one PATCH of agent 2: {}", third.all());
    let agent2 = scim.user("agent2@contoso.example").unwrap();
    assert_eq!(agent2["title"], "Skills Sales:5");
    assert_eq!(agent2[EXT]["routingSkills"], json!([{"name": "Sales", "proficiency": 5.0}]));
    assert_eq!(agent2[ENTERPRISE]["division"], "Division 2", "kept from the first read");
}

/// A `@odata.nextLink` that leads back to a page already read would page forever: an error.
#[tokio::test]
async fn a_next_link_that_loops_is_an_error() {
    let server = graph_server().await;
    let again = format!("{}/v1.0/users?$skiptoken=again", server.uri());
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(&[user(1)], Some(again))))
        .mount(&server)
        .await;
    let error = source(&server, &["mail"]).users().await.unwrap_err();
    assert!(error.to_string().contains("leads back to a page already read"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3, "token, the first page, the looping one");
}
