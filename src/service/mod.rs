//! The target: the world as it is. `TargetReader` reads the current state for `plan`;
//! `TargetWriter` sends prepared requests for `apply`. A `plan` run only ever holds a reader.

pub mod client;
pub mod genesys_rules;
mod listing;
pub mod memory;
pub mod profile;

use std::collections::BTreeMap;

pub use client::ScimClient;

pub use crate::current::{CurrentGroup, CurrentState, CurrentUser};
use serde_json::Value;

use crate::manifest::model::TargetGroupRef;
use crate::scim::resource::ScimErrorBody;
use crate::scim::{ScimRequest, ScimResponse};

/// A target request that failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Not `#[source]`: the reason is said in words, and reqwest's own chain would repeat the
    /// URL with its query (which may hold a filter on a person's name).
    #[error("cannot reach the SCIM service for {request}: {}", crate::http::transport_reason(.error))]
    Transport { request: String, error: reqwest::Error },
    #[error("{request} was refused with HTTP {status}{}", describe(.body.as_deref()))]
    Status { request: String, status: u16, body: Option<Box<ScimErrorBody>> },
    #[error("{request} answered something that is not SCIM: {detail}")]
    Protocol { request: String, detail: String },
    /// A listing the service broke: it cannot be planned on.
    #[error("the listing of {path} cannot be trusted, so nothing is planned: {detail}")]
    Listing { path: String, detail: String },
    #[error("{request} answered more than {limit_mib} MiB")]
    TooLarge { request: String, limit_mib: usize },
    #[error("target group {group} was not found")]
    GroupNotFound { group: TargetGroupRef },
    #[error("target group {group} matches {count} groups")]
    GroupAmbiguous { group: TargetGroupRef, count: usize },
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot get an OAuth2 token from `{token_url}`: {detail}")]
    Auth { token_url: String, detail: String },
}

impl TargetError {
    /// What to check or do, printed after the error and its causes.
    pub fn hint(&self) -> Option<String> {
        let hint = match self {
            TargetError::Transport { error, .. } if crate::http::transport_reason(error).starts_with("TLS") => {
                "check `target.base_url` and `target.ca_file` (a corporate CA or a TLS-inspecting proxy?)"
            }
            TargetError::Transport { error, .. } if error.is_timeout() => {
                "check `target.base_url`, the network, or raise `target.timeout_seconds`"
            }
            TargetError::Transport { .. } => "check `target.base_url` and the network",
            // A 404 on a collection means the base URL is not the service's SCIM base.
            TargetError::Status { request, status: 404, .. }
                if ["/Users", "/Groups", "/ServiceProviderConfig"]
                    .iter()
                    .any(|c| request.ends_with(&format!(" {c}"))) =>
            {
                "check `target.base_url`: it should be the SCIM base URL, the one that holds /Users and /Groups"
            }
            TargetError::TooLarge { .. } => "if that is expected, raise `target.max_response_mib`",
            TargetError::Status { status: 401, .. } => {
                "check `target.auth`: the service does not accept the token (wrong, expired or for another service)"
            }
            TargetError::Status { status: 403, .. } => {
                "check the permissions of `target.auth`'s client: the service knows it but does not allow this"
            }
            _ => return None,
        };
        Some(hint.to_owned())
    }
}

fn describe(body: Option<&ScimErrorBody>) -> String {
    let Some(body) = body else { return String::new() };
    match (&body.scim_type, &body.detail) {
        (Some(t), Some(d)) => format!(" ({t}): {d}"),
        (None, Some(d)) => format!(": {d}"),
        (Some(t), None) => format!(" ({t})"),
        (None, None) => String::new(),
    }
}

impl From<crate::http::auth::AuthError> for TargetError {
    fn from(error: crate::http::auth::AuthError) -> Self {
        use crate::http::auth::AuthError;
        match error {
            AuthError::Token { token_url, detail } | AuthError::Assertion { token_url, detail } => {
                TargetError::Auth { token_url, detail }
            }
            AuthError::Transport { request, error } => TargetError::Transport { request, error },
            AuthError::BadToken => TargetError::Unsupported(AuthError::BadToken.to_string()),
        }
    }
}

impl TargetError {
    /// Whether the resource changed since it was read. Genesys answers a stale `If-Match` in
    /// three ways: 400 `invalidVers`, 409 ("Version does not match current version") or RFC
    /// 7644's 412. A 409 to a create means something else: the resource exists.
    pub fn is_stale(&self) -> bool {
        match self {
            TargetError::Status { status: 412, .. } => true,
            TargetError::Status { status: 409, request, .. } => !request.starts_with("POST "),
            TargetError::Status { status: 400, body: Some(b), .. } => b.scim_type.as_deref() == Some("invalidVers"),
            _ => false,
        }
    }

    /// Whether a create was refused because the resource exists already (RFC 7644 409
    /// `uniqueness`): created since the target was read, by someone else or by a run that
    /// stopped before remembering it.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, TargetError::Status { status: 409, .. })
    }
}

/// The world as it is. `plan` only ever holds one of these.
pub trait TargetReader {
    /// All users, and the groups named by `groups`; a missing group is an error unless it is
    /// also in `may_be_missing` (pairings that create their target group).
    fn current_state(
        &self,
        groups: &[TargetGroupRef],
        may_be_missing: &[TargetGroupRef],
    ) -> impl Future<Output = Result<CurrentState, TargetError>> + Send;

    /// The groups named by `groups`, as `current_state` reads them, without the users.
    fn groups(
        &self,
        groups: &[TargetGroupRef],
        may_be_missing: &[TargetGroupRef],
    ) -> impl Future<Output = Result<BTreeMap<TargetGroupRef, CurrentGroup>, TargetError>> + Send;

    /// One resource by its path (`/Users/{id}`); `None` when it does not exist.
    fn fetch(&self, path: &str) -> impl Future<Output = Result<Option<Value>, TargetError>> + Send;

    /// The resources under `path` (`/Users`, `/Groups`) whose `attribute` equals `value`.
    fn find(
        &self,
        path: &str,
        attribute: &str,
        value: &str,
    ) -> impl Future<Output = Result<Vec<Value>, TargetError>> + Send;
}

/// Sends one prepared request. Only `apply` holds one of these.
pub trait TargetWriter {
    fn send(&self, request: &ScimRequest) -> impl Future<Output = Result<ScimResponse, TargetError>> + Send;

    /// The paths a written user's answer is kept by (the managed ones), when not whole: an
    /// apply of 100,000 creates keeps every answer until the state follows it.
    fn keeps(&self) -> Option<&[crate::scim::ScimPath]> {
        None
    }
}
