//! The Microsoft Entra token endpoint double for client assertions: it checks an assertion the
//! way Entra's documentation says it does, and refuses what Entra refuses.
//!
//! Taken from Microsoft's "certificate credentials", "client credentials flow" (third case:
//! federated credential) and "workload identity federation" pages, and RFC 6749 §5.2 / RFC 7523:
//! - The form has `grant_type=client_credentials`, `scope`, `client_id`,
//!   `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and
//!   `client_assertion`; anything else is `400 invalid_request`.
//! - A certificate assertion names its certificate by `x5t#S256` (SHA-256 thumbprint; the older
//!   `x5t`, SHA-1, is not accepted here: stricter than Entra, and never sent by scimform), is
//!   signed PS256 (or RS256) by that certificate's key, has `aud` = the token endpoint,
//!   `iss` = `sub` = the client id, a `jti`, and is within `nbf`..`exp`. A certificate the app
//!   does not hold, a bad signature, another audience or an expired assertion is
//!   `401 invalid_client` with the AADSTS code Entra uses.
//! - A federated token (no `x5t#S256`) must match a federated identity credential on the app:
//!   its `iss` and `sub` exactly, its `aud` containing the credential's audience
//!   (`api://AzureADTokenExchange`), signed RS256 by the issuer's key (Entra fetches it from the
//!   issuer's OIDC discovery; here it is given), and not expired.
//! - No clock-skew allowance (Entra allows some; being stricter only makes a test fail sooner).

use std::sync::Mutex;

use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const TOKEN_PATH: &str = "/contoso/oauth2/v2.0/token";
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A fixture file under `tests/fixtures/entra/`.
pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/entra").join(name)
}

/// The DER of the certificate in a fixture file.
pub fn certificate(name: &str) -> Vec<u8> {
    let pem = std::fs::read(fixture(name)).expect("fixture certificate");
    CertificateDer::from_pem_slice(&pem).expect("PEM certificate").as_ref().to_vec()
}

/// The RSA key pair in a fixture file.
pub fn key_pair(name: &str) -> RsaKeyPair {
    let pem = std::fs::read(fixture(name)).expect("fixture key");
    match PrivateKeyDer::from_pem_slice(&pem).expect("PEM key") {
        PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).expect("RSA key"),
        PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()).expect("RSA key"),
        _ => panic!("not an RSA key"),
    }
}

/// A JWT signed RS256 (or PS256) by `key`, as an issuer or a forger would make it.
pub fn signed_jwt(key: &RsaKeyPair, header: &Value, claims: &Value, pss: bool) -> String {
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; key.public_modulus_len()];
    let padding: &'static dyn signature::RsaEncoding =
        if pss { &signature::RSA_PSS_SHA256 } else { &signature::RSA_PKCS1_SHA256 };
    key.sign(padding, &aws_lc_rs::rand::SystemRandom::new(), input.as_bytes(), &mut signature).expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Seconds since 1970, now.
#[allow(clippy::disallowed_methods)]
pub fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    i64::try_from(since.as_secs()).expect("seconds")
}

/// A federated identity credential on the app: whose tokens it trusts.
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    /// The issuer's public key (PKCS#1 `RSAPublicKey` DER).
    pub issuer_key: Vec<u8>,
}

/// The app registration the endpoint answers for.
pub struct App {
    pub client_id: String,
    /// The DER of the certificate uploaded to the app.
    pub certificate: Option<Vec<u8>>,
    pub federated: Option<FederatedCredential>,
}

/// The endpoint: every refusal is kept, with its AADSTS code, for the test to read.
pub struct TokenEndpoint {
    app: App,
    token_url: String,
    pub refusals: Mutex<Vec<String>>,
}

/// Mounts the endpoint on `server` at [`TOKEN_PATH`]; it hands out `graph-token`.
pub async fn mount(server: &MockServer, app: App) -> std::sync::Arc<TokenEndpoint> {
    let endpoint = std::sync::Arc::new(TokenEndpoint {
        app,
        token_url: format!("{}{TOKEN_PATH}", server.uri()),
        refusals: Mutex::new(Vec::new()),
    });
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(Shared(endpoint.clone()))
        .named("Entra's token endpoint")
        .mount(server)
        .await;
    endpoint
}

struct Shared(std::sync::Arc<TokenEndpoint>);

impl Respond for Shared {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        match self.0.check(&String::from_utf8_lossy(&request.body)) {
            Ok(()) => ResponseTemplate::new(200)
                .set_body_json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "graph-token"})),
            Err(refusal) => {
                self.0.refusals.lock().expect("refusals").push(refusal.code.clone());
                ResponseTemplate::new(refusal.status).set_body_json(json!({
                    "error": refusal.error,
                    "error_description": format!("{}: {} Trace ID: 0000", refusal.code, refusal.message),
                    "error_codes": [refusal.code.trim_start_matches("AADSTS").parse::<u64>().unwrap_or(0)],
                }))
            }
        }
    }
}

pub struct Refusal {
    status: u16,
    error: &'static str,
    pub code: String,
    message: String,
}

fn invalid_request(code: &str, message: impl Into<String>) -> Refusal {
    Refusal { status: 400, error: "invalid_request", code: code.into(), message: message.into() }
}

fn invalid_client(code: &str, message: impl Into<String>) -> Refusal {
    Refusal { status: 401, error: "invalid_client", code: code.into(), message: message.into() }
}

impl TokenEndpoint {
    /// Entra's checks of a client-credentials request carrying an assertion.
    pub fn check(&self, body: &str) -> Result<(), Refusal> {
        let url = reqwest::Url::parse(&format!("http://form/?{body}"))
            .map_err(|_| invalid_request("AADSTS900144", "bad form"))?;
        let form: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if field("grant_type") != Some("client_credentials") {
            return Err(invalid_request("AADSTS900144", "The request body must contain grant_type."));
        }
        if field("scope") != Some("https://graph.microsoft.com/.default") {
            return Err(invalid_request("AADSTS1002012", "The provided value for scope is not valid."));
        }
        if field("client_secret").is_some() {
            return Err(invalid_request("AADSTS700025", "A client secret is not accepted with an assertion here."));
        }
        if field("client_assertion_type") != Some(JWT_BEARER) {
            return Err(invalid_request("AADSTS700023", "client_assertion_type must be jwt-bearer."));
        }
        let client_id = field("client_id").unwrap_or_default();
        if client_id != self.app.client_id {
            return Err(Refusal {
                status: 400,
                error: "unauthorized_client",
                code: "AADSTS700016".into(),
                message: format!("Application with identifier '{client_id}' was not found in the directory."),
            });
        }
        let assertion =
            field("client_assertion").ok_or_else(|| invalid_request("AADSTS900144", "no client_assertion"))?;
        let jwt =
            Jwt::parse(assertion).ok_or_else(|| invalid_client("AADSTS50027", "JWT token is invalid or malformed."))?;
        if jwt.header.get("x5t#S256").is_some() { self.check_certificate(&jwt) } else { self.check_federated(&jwt) }
    }

    fn check_certificate(&self, jwt: &Jwt) -> Result<(), Refusal> {
        let thumbprint = jwt.header["x5t#S256"].as_str().unwrap_or_default();
        let registered = self
            .app
            .certificate
            .as_ref()
            .filter(|der| URL_SAFE_NO_PAD.encode(Sha256::digest(der)) == thumbprint)
            .ok_or_else(|| {
                invalid_client(
                    "AADSTS700027",
                    format!("The certificate with identifier '{thumbprint}' is not registered on the application."),
                )
            })?;
        let (_, cert) = x509_parser::parse_x509_certificate(registered).expect("registered certificate");
        jwt.verify(cert.public_key().subject_public_key.data.as_ref())
            .map_err(|()| invalid_client("AADSTS700027", "Client assertion failed signature validation."))?;
        if jwt.claims["aud"].as_str() != Some(self.token_url.as_str()) {
            return Err(invalid_client("AADSTS700212", "The audience of the assertion is not this token endpoint."));
        }
        if jwt.claims["iss"].as_str() != Some(self.app.client_id.as_str())
            || jwt.claims["sub"].as_str() != Some(self.app.client_id.as_str())
        {
            return Err(invalid_client(
                "AADSTS700021",
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            ));
        }
        if jwt.claims["jti"].as_str().is_none_or(str::is_empty) {
            return Err(invalid_client("AADSTS50027", "The assertion has no jti."));
        }
        jwt.in_time()
    }

    fn check_federated(&self, jwt: &Jwt) -> Result<(), Refusal> {
        let credential = self.app.federated.as_ref().ok_or_else(|| {
            invalid_client(
                "AADSTS700211",
                "No matching federated identity record found for presented assertion issuer.",
            )
        })?;
        if jwt.claims["iss"].as_str() != Some(credential.issuer.as_str()) {
            return Err(invalid_client(
                "AADSTS700211",
                "No matching federated identity record found for presented assertion issuer.",
            ));
        }
        jwt.verify(&credential.issuer_key)
            .map_err(|()| invalid_client("AADSTS700027", "Client assertion failed signature validation."))?;
        if jwt.claims["sub"].as_str() != Some(credential.subject.as_str()) {
            return Err(invalid_client(
                "AADSTS700213",
                "No matching federated identity record found for presented assertion subject.",
            ));
        }
        let audiences = match &jwt.claims["aud"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&EXCHANGE_AUDIENCE) {
            return Err(invalid_client(
                "AADSTS700212",
                "No matching federated identity record found for presented assertion audience.",
            ));
        }
        jwt.in_time()
    }
}

struct Jwt {
    header: Value,
    claims: Value,
    signed: String,
    signature: Vec<u8>,
}

impl Jwt {
    fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).ok();
        Some(Self {
            header: serde_json::from_slice(&decode(header)?).ok()?,
            claims: serde_json::from_slice(&decode(claims)?).ok()?,
            signed: format!("{header}.{claims}"),
            signature: decode(signature)?,
        })
    }

    /// The signature, by `key` (PKCS#1 `RSAPublicKey` DER), with the header's algorithm.
    fn verify(&self, key: &[u8]) -> Result<(), ()> {
        let algorithm: &'static dyn signature::VerificationAlgorithm = match self.header["alg"].as_str() {
            Some("PS256") => &signature::RSA_PSS_2048_8192_SHA256,
            Some("RS256") => &signature::RSA_PKCS1_2048_8192_SHA256,
            _ => return Err(()),
        };
        UnparsedPublicKey::new(algorithm, key).verify(self.signed.as_bytes(), &self.signature).map_err(|_| ())
    }

    fn in_time(&self) -> Result<(), Refusal> {
        let now = now();
        let (Some(nbf), Some(exp)) =
            (self.claims["nbf"].as_i64().or(self.claims["iat"].as_i64()), self.claims["exp"].as_i64())
        else {
            return Err(invalid_client("AADSTS50027", "The assertion has no nbf or exp."));
        };
        if nbf > now || exp <= now {
            return Err(invalid_client("AADSTS700024", "Client assertion is not within its valid time range."));
        }
        Ok(())
    }
}

/// The public key of a key pair, as the double keeps an issuer's.
pub fn public_key(key: &RsaKeyPair) -> Vec<u8> {
    key.public_key().as_ref().to_vec()
}
