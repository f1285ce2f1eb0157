//! Credentials for the target: a static bearer token, or OAuth2 client credentials (RFC 6749
//! §4.4) with the token cached, refreshed shortly before it expires, refreshed by one caller at
//! a time, and dropped when the server answers 401 to it. The token never reaches a log line:
//! header values are marked sensitive and `Secret` cannot print itself.
#![allow(clippy::disallowed_methods, reason = "tokens expire on the clock")]

use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

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
    client_secret: Secret,
    scope: Option<String>,
    client_auth: ClientAuth,
    /// Held across a refresh: concurrent requests wait for one refresh instead of each starting one.
    cached: Mutex<Option<CachedToken>>,
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
                    client_secret.clone(),
                    scope.clone(),
                    *client_auth,
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
        client_secret: Secret,
        scope: Option<String>,
        client_auth: ClientAuth,
    ) -> Self {
        Self { http, token_url, client_id, client_secret, scope, client_auth, cached: Mutex::new(None) }
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
        builder = match self.client_auth {
            ClientAuth::Basic => builder.basic_auth(&self.client_id, Some(self.client_secret.expose())),
            ClientAuth::Form => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", self.client_secret.expose()));
                builder
            }
        };
        let started = Instant::now();
        let response = builder
            .form(&form)
            .send()
            .await
            .map_err(|source| AuthError::Transport { request: request.clone(), error: source })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            // The token endpoint's error body can echo credentials; it is not repeated.
            return Err(AuthError::Token {
                token_url: self.token_url.clone(),
                detail: format!("HTTP {status}; check the client id and secret"),
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
