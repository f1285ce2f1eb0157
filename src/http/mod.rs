//! What the SCIM client and the Graph source share on the wire: authentication (bearer tokens,
//! OAuth2 client credentials), pacing from the service's rate-limit headers, when to retry and
//! how long to wait, and reading a body within a bound.

pub mod assertion;
pub mod auth;
pub mod body;
pub mod exchange;
pub mod heartbeat;
pub mod pacing;
pub mod retry;

/// What went wrong on the wire, in words a person can act on (refused, DNS, TLS, a timeout),
/// with the URL (its query left out: it may hold a filter on a person's name).
pub fn transport_reason(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let innermost = causes.last().cloned().unwrap_or_else(|| error.to_string());
    let all = causes.join(": ").to_lowercase();
    let what = if error.is_timeout() {
        "no answer within `timeout_seconds`".to_owned()
    } else if all.contains("dns error") || all.contains("lookup address") || all.contains("name or service not known") {
        format!("the host name cannot be resolved ({innermost})")
    } else if all.contains("connection refused") {
        "the connection was refused: nothing listens there".to_owned()
    } else if ["certificate", "tls", "handshake", "corrupt message", "unknownissuer", "peer sent"]
        .iter()
        .any(|word| all.contains(word))
    {
        format!("TLS failed: {innermost}")
    } else if all.contains("connection reset") || all.contains("broken pipe") || all.contains("connection closed") {
        "the connection was closed before the answer".to_owned()
    } else {
        innermost
    };
    match error.url() {
        Some(url) => format!("{what} ({}://{}{})", url.scheme(), url.authority(), url.path()),
        None => what,
    }
}
