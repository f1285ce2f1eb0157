//! A Graph source without a client secret: a certificate's client assertion and workload
//! identity federation, against the token endpoint double (`token_double.rs`), which checks
//! signatures, audiences and expiry as Entra does.

use std::collections::BTreeSet;
use std::path::PathBuf;

use scimform::http::assertion::SigningCertificate;
use scimform::manifest::model::{GraphConfig, GraphCredential};
use scimform::source::GraphSource;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{run_async, workspace};
use crate::graph::user;
use crate::graph_double::refusals;
use crate::token_double::{
    self, App, EXCHANGE_AUDIENCE, FederatedCredential, TOKEN_PATH, certificate, fixture, key_pair, now, signed_jwt,
};

const ISSUER: &str = "https://oidc.cluster.example";
const SUBJECT: &str = "system:serviceaccount:identity:scimform";

/// A Graph double whose app holds `app.crt` and trusts tokens of the cluster's service account.
async fn entra() -> (MockServer, std::sync::Arc<token_double::TokenEndpoint>) {
    let server = MockServer::start().await;
    refusals(&server).await;
    let endpoint = token_double::mount(
        &server,
        App {
            client_id: "app-id".into(),
            certificate: Some(certificate("app.crt")),
            federated: Some(FederatedCredential {
                issuer: ISSUER.into(),
                subject: SUBJECT.into(),
                issuer_key: token_double::public_key(&key_pair("issuer.key")),
            }),
        },
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/v1.0/users"))
        .and(header("authorization", "Bearer graph-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [user(1), user(2)]})))
        .mount(&server)
        .await;
    (server, endpoint)
}

fn config(server: &MockServer, credential: GraphCredential) -> GraphConfig {
    GraphConfig {
        tenant_id: "contoso".into(),
        client_id: "app-id".into(),
        credential,
        authority: Some(format!("{}{TOKEN_PATH}", server.uri())),
        graph_url: Some(format!("{}/v1.0", server.uri())),
        filter: None,
        ca_file: None,
    }
}

fn certificate_credential(cert: &str, key: &str) -> GraphCredential {
    GraphCredential::Certificate { cert_file: fixture(cert), key_file: fixture(key) }
}

/// Reads the users through a source with `credential`: the records, or the error in words.
async fn read_users(server: &MockServer, credential: GraphCredential) -> Result<usize, String> {
    let wanted: BTreeSet<String> = ["mail".to_owned(), "disabled".to_owned()].into();
    let words = |e: scimform::source::SourceError| format!("{e} (hint: {})", e.hint().unwrap_or_default());
    let mut source = GraphSource::new("entra", &config(server, credential), &wanted).map_err(words)?;
    source.users().await.map(|records| records.len()).map_err(words)
}

/// A token the cluster hands out: `claims` over the defaults, signed by `key`.
fn issuer_token(key: &str, claims: &Value) -> String {
    let mut all = json!({"iss": ISSUER, "sub": SUBJECT, "aud": [EXCHANGE_AUDIENCE], "iat": now() - 60,
                          "nbf": now() - 60, "exp": now() + 3600});
    for (k, v) in claims.as_object().unwrap() {
        all[k] = v.clone();
    }
    signed_jwt(&key_pair(key), &json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}), &all, false)
}

fn token_file(dir: &tempfile::TempDir, token: &str) -> PathBuf {
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    file
}

fn form_of(request: &wiremock::Request) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(&format!("http://form/?{}", String::from_utf8_lossy(&request.body))).unwrap();
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[tokio::test]
async fn a_certificate_assertion_gets_a_token_and_no_secret_is_sent() {
    let (server, endpoint) = entra().await;
    assert_eq!(read_users(&server, certificate_credential("app.crt", "app.key")).await, Ok(2));
    assert!(endpoint.refusals.lock().unwrap().is_empty());
    let requests = server.received_requests().await.unwrap();
    let token_request = requests.iter().find(|r| r.url.path() == TOKEN_PATH).unwrap();
    let form = form_of(token_request);
    let keys: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["grant_type", "scope", "client_id", "client_assertion_type", "client_assertion"]);
    assert!(token_request.headers.get("authorization").is_none(), "no Basic header");
}

#[tokio::test]
async fn the_double_refuses_an_assertion_signed_with_another_key_for_another_audience_or_expired() {
    let (server, endpoint) = entra().await;
    let token_url = format!("{}{TOKEN_PATH}", server.uri());
    let app = SigningCertificate::from_files(&fixture("app.crt"), &fixture("app.key")).unwrap();
    let post = |assertion: String| {
        let token_url = token_url.clone();
        async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("scope", "https://graph.microsoft.com/.default"),
                ("client_id", "app-id"),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", assertion.as_str()),
            ];
            let response = reqwest::Client::new().post(&token_url).form(&form).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body["error_description"].as_str().unwrap_or_default().to_owned())
        }
    };
    #[allow(clippy::disallowed_methods)]
    let clock = std::time::SystemTime::now();

    let (status, _) = post(app.assertion("app-id", &token_url, clock).unwrap()).await;
    assert_eq!(status, 200, "a correctly signed assertion");

    // The app's thumbprint, signed with another key.
    let good = app.assertion("app-id", &token_url, clock).unwrap();
    let mut parts = good.split('.');
    let header: Value = serde_json::from_slice(&base64_url(parts.next().unwrap())).unwrap();
    let claims: Value = serde_json::from_slice(&base64_url(parts.next().unwrap())).unwrap();
    let forged = signed_jwt(&key_pair("other.key"), &header, &claims, true);
    let (status, description) = post(forged).await;
    assert_eq!((status, &description[..12]), (401, "AADSTS700027"), "another key: {description}");

    let (status, description) =
        post(app.assertion("app-id", "https://login.example/other/token", clock).unwrap()).await;
    assert_eq!((status, &description[..12]), (401, "AADSTS700212"), "another audience: {description}");

    let expired = clock - std::time::Duration::from_secs(3600);
    let (status, description) = post(app.assertion("app-id", &token_url, expired).unwrap()).await;
    assert_eq!((status, &description[..12]), (401, "AADSTS700024"), "expired: {description}");

    // A certificate the app does not hold.
    let other = SigningCertificate::from_files(&fixture("other.crt"), &fixture("other.key")).unwrap();
    let (status, description) = post(other.assertion("app-id", &token_url, clock).unwrap()).await;
    assert_eq!((status, &description[..12]), (401, "AADSTS700027"), "unknown certificate: {description}");
    assert_eq!(endpoint.refusals.lock().unwrap().len(), 4);
}

fn base64_url(part: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()
}

#[tokio::test]
async fn a_certificate_the_app_does_not_hold_or_a_key_of_another_certificate_is_an_error_that_says_what_to_check() {
    let (server, _) = entra().await;
    let refused = read_users(&server, certificate_credential("other.crt", "other.key")).await.unwrap_err();
    assert!(refused.contains("HTTP 401 invalid_client (AADSTS700027)"), "{refused}");
    assert!(refused.contains("certificate is uploaded to the app registration"), "{refused}");
    assert!(refused.contains("`client_certificate`"), "{refused}");
    assert!(!refused.contains("eyJ"), "no assertion in an error: {refused}");

    let mismatched = read_users(&server, certificate_credential("app.crt", "other.key")).await.unwrap_err();
    assert!(mismatched.contains("other.key` is not the key of"), "{mismatched}");
    let not_a_key = read_users(&server, certificate_credential("app.crt", "app.crt")).await.unwrap_err();
    assert!(not_a_key.contains("holds no unencrypted PEM private key"), "{not_a_key}");
    let missing = read_users(&server, certificate_credential("missing.crt", "app.key")).await.unwrap_err();
    assert!(missing.contains("cannot read") && missing.contains("missing.crt"), "{missing}");
}

#[tokio::test]
async fn a_federated_token_is_sent_as_the_assertion_and_a_bad_one_is_refused_with_its_reason() {
    let (server, endpoint) = entra().await;
    let dir = tempfile::tempdir().unwrap();
    let credential = |token: &str| GraphCredential::FederatedToken { token_file: token_file(&dir, token) };

    let good = issuer_token("issuer.key", &json!({}));
    assert_eq!(read_users(&server, credential(&good)).await, Ok(2));
    let requests = server.received_requests().await.unwrap();
    let form = form_of(requests.iter().find(|r| r.url.path() == TOKEN_PATH).unwrap());
    assert!(form.contains(&("client_assertion".to_owned(), good.clone())), "the token as the scheduler wrote it");

    for (token, code) in [
        (issuer_token("other.key", &json!({})), "AADSTS700027"),
        (issuer_token("issuer.key", &json!({"aud": ["api://another"]})), "AADSTS700212"),
        (issuer_token("issuer.key", &json!({"exp": now() - 10})), "AADSTS700024"),
        (issuer_token("issuer.key", &json!({"sub": "system:serviceaccount:default:other"})), "AADSTS700213"),
    ] {
        let error = read_users(&server, credential(&token)).await.unwrap_err();
        assert!(error.contains(&format!("HTTP 401 invalid_client ({code})")), "{code}: {error}");
        assert!(error.contains("federated credential on the app trusts"), "{error}");
        assert!(!error.contains(&token[..20]), "no token in an error: {error}");
    }
    assert_eq!(endpoint.refusals.lock().unwrap().len(), 4);

    let empty = read_users(&server, credential("")).await.unwrap_err();
    assert!(empty.contains("is empty"), "{empty}");
}

/// The whole run through the binary: a manifest with `client_certificate` (paths relative to the
/// manifest) plans against the embedded server; one with a federated token file too.
#[tokio::test]
async fn manifests_with_a_certificate_or_a_federated_token_plan_without_a_secret() {
    let (server, _) = entra().await;
    let scim = scimform::service::memory::MemoryServer::start(scimform::service::memory::MemoryStore::new(Some("tok")))
        .await
        .unwrap();
    let token = issuer_token("issuer.key", &json!({}));
    for credential in [
        "client_certificate: { cert_file: certs/app.crt, key_file: certs/app.key }".to_owned(),
        "federated_token_file: token".to_owned(),
    ] {
        let manifest = format!(
            "version: 1\nsources:\n  entra:\n    kind: graph\n    tenant_id: contoso\n    client_id: app-id\n    {credential}\n    authority: {uri}{TOKEN_PATH}\n    graph_url: {uri}/v1.0\ntarget:\n  kind: scim\n  base_url: {scim}\n  auth: {{ bearer_token: tok }}\nusers:\n  source: entra\n  external_id: \"{{{{ id }}}}\"\n  attributes:\n    userName: \"{{{{ mail | lower }}}}\"\n",
            uri = server.uri(),
            scim = scim.base_url(),
        );
        let app_crt = std::fs::read_to_string(fixture("app.crt")).unwrap();
        let app_key = std::fs::read_to_string(fixture("app.key")).unwrap();
        let dir = workspace(&[
            ("m.yaml", &manifest),
            ("certs/app.crt", &app_crt),
            ("certs/app.key", &app_key),
            ("token", &token),
        ]);
        let plan = run_async(dir.path(), &["plan", "-f", "m.yaml", "--no-state"], &[]).await;
        assert_eq!(plan.code, 0, "{credential}: {}", plan.all());
        assert!(plan.stdout.contains("+ user \"user1@contoso.example\""), "{}", plan.stdout);
        assert!(!plan.all().contains("PRIVATE KEY") && !plan.all().contains(&token[..20]), "{}", plan.all());
    }

    let both = "version: 1\nsources:\n  entra:\n    kind: graph\n    tenant_id: contoso\n    client_id: app-id\n    client_secret: s\n    federated_token_file: token\ntarget:\n  kind: scim\n  base_url: https://scim.example\n  auth: { bearer_token: tok }\nusers:\n  source: entra\n  attributes:\n    userName: \"{{ mail }}\"\n";
    let dir = workspace(&[("m.yaml", both)]);
    let validate = run_async(dir.path(), &["validate", "-f", "m.yaml"], &[]).await;
    assert_eq!(validate.code, 1, "{}", validate.all());
    assert!(validate.stderr.contains("m.yaml:4:"), "{}", validate.stderr);
    assert!(validate.stderr.contains("a graph source takes one credential"), "{}", validate.stderr);
    assert!(validate.stderr.contains("give exactly one of `client_secret`"), "{}", validate.stderr);
}
