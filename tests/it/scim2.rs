//! End to end against scim2-server, a third-party RFC 7644 implementation: PATCH answered 204
//! with only an `ETag`, weak ETags, 412 for a stale `If-Match`, members removed by
//! `members[value eq "id"]`.

use std::fmt::Write;

use scimform::apply::execute;
use scimform::pipeline::{client_for, read_and_plan, sources_for};
use serde_json::json;

use crate::common::{RecordingProxy, Scim2Server, run_async, workspace};

fn people(count: usize, changed_title: Option<usize>) -> String {
    let mut out = String::from("users:\n");
    for i in 0..count {
        let title = if changed_title == Some(i) { "Team Lead" } else { "Agent" };
        let _ = writeln!(
            out,
            "  - {{id: '{i}', mail: 'p{i:04}@corp.example', givenName: 'P{i}', sn: 'Person', title: {title}}}"
        );
    }
    out.push_str("groups:\n  - {id: first-ten, name: First ten, members: [");
    out.push_str(&(0..10).map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", "));
    out.push_str("]}\n");
    out
}

fn manifest(base_url: &str) -> String {
    format!(
        r#"version: 1
sources:
  hr: {{ kind: file, path: people.yaml }}
target:
  kind: scim
  base_url: {base_url}
  auth: {{ bearer_token: "${{env:SCIM_TOKEN}}" }}
  concurrency: 4
users:
  source: hr
  external_id: "hr-{{{{ id }}}}"
  attributes:
    userName: "{{{{ mail | lower }}}}"
    displayName: "{{{{ givenName }}}} {{{{ sn }}}}"
    name.givenName: givenName
    name.familyName: sn
    'emails[type eq "work"].value': mail
    title: title
groups:
  - {{ name: First ten, source: hr, from: {{ id: first-ten }}, to: {{ display_name: First ten }} }}
"#
    )
}

/// A fresh scim2-server holding the (empty) group the manifest pairs with.
async fn server_with_group() -> Scim2Server {
    let server = Scim2Server::start().await;
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "First ten"});
    server.request(reqwest::Method::POST, "/Groups", Some(group)).await;
    server
}

#[tokio::test]
async fn a_thousand_users_converge_and_one_changed_title_is_one_patch() {
    let server = server_with_group().await;
    let dir = workspace(&[("m.yaml", &manifest(&server.base_url)), ("people.yaml", &people(1000, None))]);
    let env = [("SCIM_TOKEN", server.token.as_str())];

    let first = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first
            .stdout
            .contains("Plan: 1000 to create, 0 to update, 0 to adopt, 0 to disable, 0 to delete, 1 group to change.")
    );
    assert!(first.stderr.contains("1000 POST 201"), "{}", first.stderr.lines().last().unwrap_or_default());

    let second = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(
        (second.code, second.stdout.as_str()),
        (0, "No changes. The target matches the manifest.\n"),
        "{}",
        second.stderr
    );

    std::fs::write(dir.path().join("people.yaml"), people(1000, Some(7))).unwrap();
    let third = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(third.stdout.contains("~ title = \"Agent\" -> \"Team Lead\""), "{}", third.stdout);
    let requests = third.stderr.lines().find(|l| l.starts_with("Requests:")).unwrap();
    assert!(requests.contains(" 1 PATCH 204;") && !requests.contains("POST"), "{requests}");
}

#[tokio::test]
async fn a_resource_changed_behind_the_plan_is_reported_stale_not_overwritten() {
    let server = server_with_group().await;
    let dir = workspace(&[("m.yaml", &manifest(&server.base_url)), ("people.yaml", &people(3, None))]);
    let env = [("SCIM_TOKEN", server.token.as_str())];
    let first = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(first.code, 0, "{}", first.stderr);

    // Plan a title change, then let someone edit the same user before it is applied.
    std::fs::write(dir.path().join("people.yaml"), people(3, Some(1))).unwrap();
    let manifest = scimform::manifest::parse(
        &manifest(&server.base_url),
        "m.yaml",
        &scimform::manifest::MapEnvironment([("SCIM_TOKEN".to_owned(), server.token.clone())].into_iter().collect()),
        dir.path(),
    )
    .unwrap();
    let client = client_for(&manifest).unwrap();
    let plan = read_and_plan(
        &manifest,
        &mut sources_for(&manifest, None).unwrap(),
        &client,
        scimform::progress::Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(plan.users.len(), 1);
    let id = plan.users[0].target_id.clone().unwrap();
    server
        .request(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Edited by hand"}]})),
        )
        .await;
    let report = execute(&plan, &client, 1).await;
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1);
    let failure = failures[0].result.as_ref().unwrap_err();
    assert!(failure.message.contains("changed in the target since it was read"), "{failure}");
    assert_eq!(failure.status, Some(412));
    let user = server.request(reqwest::Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(user["title"], "Edited by hand", "the edit is not overwritten");
}

/// Filtered multi-valued attributes against a third-party server: a missing element is added,
/// a changed one replaced, an emptied one removed, and the next run has nothing to do.
#[tokio::test]
async fn multi_valued_attributes_converge_element_by_element() {
    let server = Scim2Server::start().await;
    let manifest = format!(
        r#"version: 1
sources:
  hr: {{ kind: file, path: people.yaml }}
target:
  kind: scim
  base_url: {}
  auth: {{ bearer_token: "${{env:SCIM_TOKEN}}" }}
users:
  source: hr
  attributes:
    userName: mail
    'emails[type eq "work"].value': mail
    'phoneNumbers[type eq "mobile"].value': {{ from: mobile, on_empty: remove }}
    'phoneNumbers[type eq "work"].value': '{{{{ phone | e164("US") }}}}'
    'addresses[type eq "work"].locality': {{ from: city, on_empty: remove }}
"#,
        server.base_url
    );
    let person = |mobile: &str, phone: &str, city: &str| {
        format!(
            "users:\n  - {{id: '1', mail: ann@corp.example, mobile: '{mobile}', phone: '{phone}', city: '{city}'}}\n"
        )
    };
    let dir = workspace(&[("m.yaml", &manifest), ("people.yaml", &person("+12015550100", "(201) 555-0123", "Leeds"))]);
    let env = [("SCIM_TOKEN", server.token.as_str())];
    let first = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(first.code, 0, "{}", first.all());

    // Someone adds a home phone and a country by hand; scimform manages neither.
    let users = server.request(reqwest::Method::GET, "/Users", None).await;
    let id = users["Resources"][0]["id"].as_str().unwrap().to_owned();
    let edit = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
        {"op": "add", "path": "phoneNumbers", "value": [{"type": "home", "value": "+12015550111"}]},
        {"op": "add", "path": "addresses[type eq \"work\"].country", "value": "GB"}]});
    server.request(reqwest::Method::PATCH, &format!("/Users/{id}"), Some(edit)).await;

    // The mobile number and the city leave the source; the work phone changes.
    std::fs::write(dir.path().join("people.yaml"), person("", "(201) 555-0199", "")).unwrap();
    let second = run_async(dir.path(), &["apply", "-f", "m.yaml", "--auto-approve"], &env).await;
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(second.stderr.contains("1 PATCH 204") || second.stderr.contains("1 PATCH 200"), "{}", second.stderr);
    let user = server.request(reqwest::Method::GET, &format!("/Users/{id}"), None).await;
    let mut phones: Vec<(String, String)> = user["phoneNumbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["type"].as_str().unwrap().to_owned(), p["value"].as_str().unwrap().to_owned()))
        .collect();
    phones.sort();
    assert_eq!(
        phones,
        [("home".to_owned(), "+12015550111".to_owned()), ("work".to_owned(), "+12015550199".to_owned())],
        "{user}"
    );
    assert_eq!(user["addresses"], json!([{"type": "work", "country": "GB"}]), "{user}");
    assert_eq!(user["emails"][0]["value"], "ann@corp.example");

    let third = run_async(dir.path(), &["plan", "-f", "m.yaml", "--detailed-exitcode"], &env).await;
    assert_eq!(
        (third.code, third.stdout.as_str()),
        (0, "No changes. The target matches the manifest.\n"),
        "{}",
        third.all()
    );
}

/// With a state, a scheduled run sees the target's changes without listing it (scim2-server
/// filters on `meta.lastModified`): a managed attribute edited by hand is read back by a
/// filtered query and restored; a user deleted by hand shows in the `count=0` check, which
/// lists the target, and the user is created again. Asserted on the requests scimform sent.
#[tokio::test]
async fn a_scheduled_run_reads_what_was_modified_and_counts_what_was_deleted() {
    let server = server_with_group().await;
    let proxy = RecordingProxy::start(server.base_url.trim_end_matches("/v2")).await;
    let dir = workspace(&[("m.yaml", &manifest(&proxy.base_url)), ("people.yaml", &people(30, None))]);
    let env = [("SCIM_TOKEN", server.token.as_str())];
    let apply = ["apply", "-f", "m.yaml", "--auto-approve"];
    let first = run_async(dir.path(), &apply, &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let is_listing = |r: &&String| {
        r.starts_with("GET /v2/Users") && !r.contains("count=0") && !r.contains("filter=meta.lastModified gt ")
    };
    assert!(proxy.take().iter().any(|r| is_listing(&r)), "the first run lists the target");

    let found =
        server.request(reqwest::Method::GET, "/Users?filter=userName%20eq%20%22p0003%40corp.example%22", None).await;
    let id = found["Resources"][0]["id"].as_str().unwrap().to_owned();
    let edit = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                      "Operations": [{"op": "replace", "path": "title", "value": "Edited By Hand"}]});
    server.request(reqwest::Method::PATCH, &format!("/Users/{id}"), Some(edit)).await;
    let restored = run_async(dir.path(), &apply, &env).await;
    assert_eq!(restored.code, 0, "{}", restored.all());
    assert!(restored.stdout.contains(r#"~ title = "Edited By Hand" -> "Agent""#), "{}", restored.stdout);
    assert!(
        restored.stderr.contains("Planned against the state, with the 1 user(s) modified in the target since "),
        "{}",
        restored.stderr
    );
    let requests = proxy.take();
    assert!(!requests.iter().any(|r| is_listing(&r)), "no listing: {requests:#?}");
    assert!(requests.iter().any(|r| r == "GET /v2/Users?startIndex=1&count=0"), "{requests:#?}");
    assert!(requests.iter().any(|r| r.contains("filter=meta.lastModified gt ")), "{requests:#?}");
    let user = server.request(reqwest::Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(user["title"], "Agent");

    let found =
        server.request(reqwest::Method::GET, "/Users?filter=userName%20eq%20%22p0005%40corp.example%22", None).await;
    let deleted = found["Resources"][0]["id"].as_str().unwrap().to_owned();
    server.request(reqwest::Method::DELETE, &format!("/Users/{deleted}"), None).await;
    let recreated = run_async(dir.path(), &apply, &env).await;
    assert_eq!(recreated.code, 0, "{}", recreated.all());
    assert!(
        recreated.stderr.contains("Read the target in full: it holds 29 user(s) where the state remembers 30"),
        "{}",
        recreated.stderr
    );
    assert!(recreated.stdout.contains("+ user \"p0005@corp.example\""), "{}", recreated.stdout);
    assert!(proxy.take().iter().any(|r| is_listing(&r)), "the count sent it to a listing");

    let idle = run_async(dir.path(), &apply, &env).await;
    assert_eq!(
        (idle.code, idle.stdout.as_str()),
        (0, "No changes. The target matches the manifest.\n"),
        "{}",
        idle.all()
    );
    let requests = proxy.take();
    assert!(!requests.iter().any(|r| is_listing(&r) || !r.starts_with("GET")), "{requests:#?}");

    // That run changed nothing: the next one's plan stands. The users modified since (the
    // margin still holds the last writes) are each as the state remembers them, read from it
    // by id; the people file is as it was.
    let stood = run_async(dir.path(), &apply, &env).await;
    assert_eq!(stood.stdout, "No changes. The target matches the manifest.\n", "{}", stood.all());
    assert!(stood.stderr.contains("whose plan stands"), "{}", stood.stderr);
    assert!(stood.stderr.contains(", none modified since "), "{}", stood.stderr);
    let requests = proxy.take();
    let (counts, modified) = (
        requests.iter().filter(|r| r.contains("count=0")).count(),
        requests.iter().filter(|r| r.contains("filter=meta.lastModified gt ")).count(),
    );
    assert_eq!((counts, modified), (1, 1), "{requests:#?}");

    // A hand edit while the plan stood: the modified user differs from what the state
    // remembers, so the run plans again that user alone (loaded from the state, with its
    // reading now) and restores it.
    server
        .request(
            reqwest::Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Edited Again"}]})),
        )
        .await;
    let again = run_async(dir.path(), &apply, &env).await;
    assert!(again.stdout.contains(r#"~ title = "Edited Again" -> "Agent""#), "{}", again.all());
    assert!(!again.stderr.contains("whose plan stands"), "{}", again.stderr);
    assert!(again.stderr.contains("Planned again only the 1 user(s) whose inputs changed"), "{}", again.stderr);
    let requests = proxy.take();
    assert!(!requests.iter().any(|r| is_listing(&r)), "no listing: {requests:#?}");
    // The check that found the plan no longer stands serves the plan made again.
    let (counts, modified) = (
        requests.iter().filter(|r| r.contains("count=0")).count(),
        requests.iter().filter(|r| r.contains("filter=meta.lastModified gt ")).count(),
    );
    assert_eq!((counts, modified), (1, 1), "{requests:#?}");
    let user = server.request(reqwest::Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(user["title"], "Agent");
}
