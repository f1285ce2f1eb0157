//! Credentials for the target and the Graph source: a static bearer token, or OAuth2 client
//! credentials (RFC 6749 §4.4; the client proves itself with a secret or with a client assertion,
//! `assertion.rs`) with the token cached, refreshed shortly before it expires, refreshed by one caller at
//! a time, and dropped when the server answers 401 to it. The token never reaches a log line:
//! header values are marked sensitive and `Secret` cannot print itself.
#![allow(clippy::disallowed_methods, reason = "tokens expire on the clock")]

use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::assertion::{JWT_BEARER, SigningCertificate, federated_token};
use crate::manifest::model::{ClientAuth, TargetAuth};
use crate::secret::Secret;

/// Why no `Authorization` header could be made.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot get an OAuth2 token from `{token_url}`: {detail}")]
    Token { token_url: String, detail: String },
    /// Not `#[source]`: the reason is said in words (see `transport_reason`).
    #[error("cannot reach the token endpoint for {request}: {}", super::transport_reason(.error))]
    Transport { request: String, error: reqwest::Error },
    #[error("the token holds characters that cannot be sent in a header")]
    BadToken,
    /// The certificate's assertion or the federated token could not be made.
    #[error("cannot make the client assertion for `{token_url}`: {detail}")]
    Assertion { token_url: String, detail: String },
}

/// Refresh this long before the token expires, so no request goes out with a dying token.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum Auth {
    Bearer(Secret),
    OAuth2(OAuth2),
}

#[derive(Debug)]
pub struct OAuth2 {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    credential: ClientCredential,
    scope: Option<String>,
    /// Held across a refresh: concurrent requests wait for one refresh instead of each starting one.
    cached: Mutex<Option<CachedToken>>,
}

/// How the client proves itself to the token endpoint.
#[derive(Debug)]
pub enum ClientCredential {
    /// A client secret, in a Basic header or in the form.
    Secret { secret: Secret, sent: ClientAuth },
    /// A JWT signed with the key of a certificate registered on the app.
    Certificate(SigningCertificate),
    /// A token another issuer writes to this file (workload identity federation).
    FederatedToken(std::path::PathBuf),
}

impl ClientCredential {
    /// What to check when the token endpoint refuses it.
    pub fn what_to_check(&self) -> &'static str {
        match self {
            ClientCredential::Secret { .. } => "check the client id and secret",
            ClientCredential::Certificate(_) => {
                "check the client id and that the certificate is uploaded to the app registration"
            }
            ClientCredential::FederatedToken(_) => {
                "check the client id and that a federated credential on the app trusts the token's issuer, subject and audience"
            }
        }
    }
}

#[derive(Debug, Clone)]
struct CachedToken {
    header: HeaderValue,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// An OAuth2 error answer (RFC 6749 §5.2).
#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl TokenError {
    /// ` invalid_client (AADSTS700027)`: the RFC's code and Entra's, never the description's
    /// words, which may quote what was sent.
    fn code(&self) -> String {
        let mut words = Vec::new();
        if self.error.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && self.error.len() <= 40 {
            words.push(self.error.clone());
        }
        if let Some(start) = self.error_description.find("AADSTS") {
            let digits: String =
                self.error_description[start + 6..].chars().take_while(char::is_ascii_digit).take(8).collect();
            if !digits.is_empty() {
                words.push(format!("(AADSTS{digits})"));
            }
        }
        words.iter().flat_map(|w| [" ", w.as_str()]).collect()
    }
}

fn bearer(token: &str) -> Result<HeaderValue, AuthError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| AuthError::BadToken)?;
    value.set_sensitive(true);
    Ok(value)
}

impl Auth {
    pub fn new(auth: &TargetAuth, http: reqwest::Client) -> Self {
        match auth {
            TargetAuth::BearerToken(token) => Auth::Bearer(token.clone()),
            TargetAuth::OAuth2ClientCredentials { token_url, client_id, client_secret, scope, client_auth } => {
                Auth::OAuth2(OAuth2::new(
                    http,
                    token_url.clone(),
                    client_id.clone(),
                    ClientCredential::Secret { secret: client_secret.clone(), sent: *client_auth },
                    scope.clone(),
                ))
            }
        }
    }

    /// The `Authorization` header to send now.
    pub async fn header(&self) -> Result<HeaderValue, AuthError> {
        match self {
            Auth::Bearer(token) => bearer(token.expose()),
            Auth::OAuth2(oauth) => oauth.header().await,
        }
    }

    /// The server refused `used`: forget it, unless another request already replaced it.
    pub async fn reject(&self, used: &HeaderValue) {
        if let Auth::OAuth2(oauth) = self {
            let mut cached = oauth.cached.lock().await;
            if cached.as_ref().is_some_and(|c| c.header == used) {
                *cached = None;
            }
        }
    }

    /// Whether a 401 can be answered by fetching a new token.
    pub fn can_refresh(&self) -> bool {
        matches!(self, Auth::OAuth2(_))
    }
}

impl OAuth2 {
    /// Client credentials against `token_url` (also used by the Graph source).
    pub fn new(
        http: reqwest::Client,
        token_url: String,
        client_id: String,
        credential: ClientCredential,
        scope: Option<String>,
    ) -> Self {
        Self { http, token_url, client_id, credential, scope, cached: Mutex::new(None) }
    }

    async fn header(&self) -> Result<HeaderValue, AuthError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| t.refresh_at > Instant::now()) {
            return Ok(token.header.clone());
        }
        let token = self.fetch().await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(header)
    }

    async fn fetch(&self) -> Result<CachedToken, AuthError> {
        let request = format!("POST {} (token)", self.token_url);
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        let mut builder = self.http.post(&self.token_url);
        let assertion_error = |detail| AuthError::Assertion { token_url: self.token_url.clone(), detail };
        let assertion = match &self.credential {
            ClientCredential::Secret { .. } => None,
            ClientCredential::Certificate(certificate) => Some(Secret::new(
                certificate
                    .assertion(&self.client_id, &self.token_url, std::time::SystemTime::now())
                    .map_err(assertion_error)?,
            )),
            ClientCredential::FederatedToken(file) => {
                Some(Secret::new(federated_token(file).map_err(assertion_error)?))
            }
        };
        match (&self.credential, &assertion) {
            (ClientCredential::Secret { secret, sent: ClientAuth::Basic }, _) => {
                builder = builder.basic_auth(&self.client_id, Some(secret.expose()));
            }
            (ClientCredential::Secret { secret, sent: ClientAuth::Form }, _) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret.expose()));
            }
            (_, Some(assertion)) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_assertion_type", JWT_BEARER));
                form.push(("client_assertion", assertion.expose()));
            }
            (_, None) => {}
        }
        let started = Instant::now();
        let response = builder
            .form(&form)
            .send()
            .await
            .map_err(|source| AuthError::Transport { request: request.clone(), error: source })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            // The token endpoint's error body can echo credentials: only its error code is said.
            let code = response.json::<TokenError>().await.ok().map(|e| e.code()).unwrap_or_default();
            return Err(AuthError::Token {
                token_url: self.token_url.clone(),
                detail: format!("HTTP {status}{code}; {}", self.credential.what_to_check()),
            });
        }
        let body: TokenResponse = response.json().await.map_err(|e| AuthError::Token {
            token_url: self.token_url.clone(),
            detail: format!("the answer is not an OAuth2 token response ({e})"),
        })?;
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(3600));
        Ok(CachedToken {
            header: bearer(&body.access_token)?,
            refresh_at: started + lifetime.saturating_sub(REFRESH_MARGIN.min(lifetime / 2)),
        })
    }
}
