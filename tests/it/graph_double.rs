//! The Microsoft Graph test double: a wiremock server that refuses, with Graph's own 400 error
//! body, every query Graph's v1.0 documentation says it refuses. Every Graph test starts its
//! server with `graph_server()` (or mounts `refusals` itself), so a request the real Graph
//! would answer 400 fails the test instead of passing against a lenient fake.
//!
//! The rule for every double in these tests: **a fake may be stricter than the service it
//! stands for, never more lenient.** What this one takes from Graph's documentation (the v1.0
//! `user` and `group` resources, `user: delta`, `group: delta`, "Use query parameters"):
//! - `$select` names properties of the collection's type (`microsoft.graph.user` for users and
//!   group members, `microsoft.graph.group` for groups; `members` on a group delta query) or a
//!   directory extension (`extension_{appId}_{name}`). Anything else is
//!   `400 BadRequest: Could not find a property named 'x' on type 'microsoft.graph.user'.`;
//!   a dotted name (`employeeOrgData.division`) is no property either: Graph selects the
//!   top-level property.
//! - Delta queries (`/users/delta`, `/groups/delta`) take `$filter` only as `id eq '…'`
//!   (joined by `or`, at most 50), and no `$expand`, `$top`, `$orderby`, `$search` or `$count`
//!   (stricter than Graph: we never send them there, so any is a bug).
//! - `$top` is 1 to 999 on users and group members; `$expand` on `/users` only `manager`.
//! - System query options Graph does not know are refused, and `$skip`, which users and groups
//!   do not support (paging is by `@odata.nextLink`).

use scimform::manifest::graph_properties::{GROUP_PROPERTIES, USER_PROPERTIES};
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Match, Mock, MockServer, Request, Respond, ResponseTemplate};

/// A started Graph double: the refusals and a token endpoint at
/// `/contoso/oauth2/v2.0/token`.
pub async fn graph_server() -> MockServer {
    let server = MockServer::start().await;
    mount_graph(&server).await;
    server
}

/// Mounts the refusals and the token endpoint (again, after `reset`).
pub async fn mount_graph(server: &MockServer) {
    refusals(server).await;
    Mock::given(method("POST"))
        .and(path("/contoso/oauth2/v2.0/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=app-id"))
        .and(body_string_contains("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "graph-token"})),
        )
        .mount(server)
        .await;
}

/// Mounts only the refusals, ahead of every other mock.
pub async fn refusals(server: &MockServer) {
    Mock::given(Refused).respond_with(Refused).with_priority(1).named("Graph's refusals").mount(server).await;
}

/// Requests Graph answers 400.
struct Refused;

impl Match for Refused {
    fn matches(&self, request: &Request) -> bool {
        refusal(request).is_some()
    }
}

impl Respond for Refused {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let (code, message) = refusal(request).unwrap_or_default();
        ResponseTemplate::new(400).set_body_json(json!({"error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2026-12-02T03:00:00", "request-id": "00000000-0000-0000-0000-000000000000",
                           "client-request-id": "00000000-0000-0000-0000-000000000000"}}}))
    }
}

fn is_known(name: &str, known: &[&str]) -> bool {
    known.iter().any(|k| k.eq_ignore_ascii_case(name))
        || name.get(..10).is_some_and(|p| p.eq_ignore_ascii_case("extension_"))
}

/// Why Graph would refuse a request: `(code, message)`.
pub fn refusal(request: &Request) -> Option<(String, String)> {
    if request.method.as_str() != "GET" {
        return None;
    }
    let url = &request.url;
    let resource = url.path().strip_prefix("/v1.0")?;
    let query: Vec<(String, String)> =
        url.query_pairs().map(|(k, v)| (k.trim_start_matches('$').to_ascii_lowercase(), v.into_owned())).collect();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let segments: Vec<&str> = resource.trim_matches('/').split('/').collect();
    let (user_typed, group_typed, delta) = match segments.as_slice() {
        ["users"] | ["groups", _, "members" | "transitiveMembers", "microsoft.graph.user"] => (true, false, false),
        ["users", "delta"] => (true, false, true),
        ["groups", "delta"] => (false, true, true),
        ["groups"] | ["groups", _] => (false, true, false),
        _ => (false, false, false),
    };
    let bad_request = |message: String| Some(("BadRequest".to_owned(), message));
    // System query options Graph does not know, and `$skip`, which users and groups refuse.
    for (name, _) in url.query_pairs().filter(|(k, _)| k.starts_with('$')) {
        let known =
            ["$select", "$filter", "$expand", "$top", "$skiptoken", "$deltatoken", "$count", "$orderby", "$search"];
        if !known.iter().any(|k| k.eq_ignore_ascii_case(&name)) {
            return bad_request(format!("Query option '{name}' is not allowed."));
        }
    }
    if let Some(select) = param("select") {
        for name in select.split(',').map(str::trim) {
            let known = if user_typed {
                is_known(name, USER_PROPERTIES)
            } else if group_typed {
                is_known(name, GROUP_PROPERTIES) || (delta && name.eq_ignore_ascii_case("members"))
            } else {
                true
            };
            if !known {
                let kind = if user_typed { "microsoft.graph.user" } else { "microsoft.graph.group" };
                return bad_request(format!("Could not find a property named '{name}' on type '{kind}'."));
            }
        }
    }
    if delta {
        for refused in ["expand", "top", "orderby", "search", "count"] {
            if param(refused).is_some() {
                return Some((
                    "Request_UnsupportedQuery".into(),
                    format!("Unsupported query option ${refused} on delta."),
                ));
            }
        }
        if let Some(filter) = param("filter") {
            let clauses: Vec<&str> = filter.split(" or ").collect();
            let by_id = |clause: &str| {
                clause
                    .trim()
                    .strip_prefix("id eq '")
                    .and_then(|rest| rest.strip_suffix('\''))
                    .is_some_and(|id| !id.is_empty())
            };
            if clauses.len() > 50 || !clauses.iter().all(|c| by_id(c)) {
                return Some(("Request_UnsupportedQuery".into(), format!("Unsupported filter on delta: {filter}")));
            }
        }
    } else {
        if let Some(top) = param("top")
            && !top.parse::<u32>().is_ok_and(|t| (1..=999).contains(&t))
        {
            return bad_request(format!("Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."));
        }
        if let Some(expand) = param("expand") {
            let manager = expand == "manager" || expand.starts_with("manager($select=");
            if !(segments.as_slice() == ["users"] && manager) {
                return bad_request(format!("Could not find a navigation property for $expand={expand}."));
            }
        }
    }
    None
}

/// The double refuses what Graph refuses, and only through its own mock: a request that Graph
/// accepts falls through to the test's mocks.
#[tokio::test]
async fn the_double_refuses_what_graph_refuses() {
    let server = graph_server().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": []})))
        .mount(&server)
        .await;
    let client = reqwest::Client::new();
    let get = |query: &str| {
        let url = format!("{}/v1.0/{query}", server.uri());
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, body) = get("users/delta?$select=id,mail,objectGUID,sn").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadRequest");
    assert_eq!(
        body["error"]["message"],
        "Could not find a property named 'objectGUID' on type 'microsoft.graph.user'."
    );
    for refused in [
        "users?$select=id,employeeOrgData.division",
        "users/delta?$select=id&$expand=manager",
        "users/delta?$filter=department eq 'Sales'",
        "groups/delta?$filter=displayName eq 'x'&$select=members",
        "users?$top=1000",
        "groups/g1/members/microsoft.graph.user?$select=id,members",
        "groups?$select=id,userPrincipalName",
        "users?$select=id&$skip=100",
        "users?$select=id&$frobnicate=1",
    ] {
        assert_eq!(get(refused).await.0, 400, "{refused}");
    }
    for accepted in [
        "users?$select=id,accountEnabled,onPremisesExtensionAttributes,employeeOrgData&$top=999",
        "users?$select=id,extension_0123abcd_costCentre&$expand=manager($select=id)",
        "users/delta?$select=id,mail",
        "groups/delta?$filter=id eq 'g1'&$select=members",
        "groups/g1?$select=id,displayName",
        "groups/g1/transitiveMembers/microsoft.graph.user?$select=id,mail&$top=999",
    ] {
        assert_eq!(get(accepted).await.0, 200, "{accepted}");
    }
}
