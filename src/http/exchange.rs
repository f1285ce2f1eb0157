//! One request with the retry rules every caller shares (the SCIM client and the Graph source):
//! paced, authenticated anew on every attempt (a refreshed token is the one sent), a 401 answered
//! by one token refresh, a 429 by the wait the service asks for, a 502-504 (and, where the caller
//! says so, any 5xx) and a lost connection by a jittered backoff, each within `max_attempts`.
//! Before anything is sent again, the caller may look for what the lost attempt did (a POST that
//! was stored) and end there.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};

use super::auth::{Auth, AuthError};
use super::body::{BodyError, read_limited};
use super::pacing::{Pacer, throttled_wait};
use super::retry::{Backoff, Verdict, verdict};

/// How a caller retries.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// The largest body read, on success and on failure.
    pub max_body: usize,
    /// Retry any 5xx, not only 502-504 (Graph's 500s are passing; a SCIM service's are not).
    pub retry_server_errors: bool,
}

/// What happened on the way, for a caller's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The pacer held the request back.
    Paced,
    /// The request is sent again.
    Retried,
    /// The token was refreshed after a 401.
    Refreshed,
}

/// A final answer: success, or a status no retry will change.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// Empty when a failure's body was over the bound.
    pub body: Vec<u8>,
}

/// How an exchange ended without an answer, or with something the lost attempt left (`Found`).
#[derive(Debug)]
pub enum Ended<F, E> {
    Auth(AuthError),
    Transport(reqwest::Error),
    /// A successful answer's body was over `max_body`.
    TooLarge {
        limit: usize,
    },
    /// The caller's look before a re-send found what the lost attempt did.
    Found(F),
    /// The caller's look before a re-send failed.
    Lookup(E),
}

/// Sends the request `build` makes (given the `Authorization` header) until it has a final
/// answer. `before_resend` runs before each re-send; `Ok(Some(found))` ends the exchange.
pub async fn exchange<F, E, Look>(
    auth: &Auth,
    pacer: &Pacer,
    policy: Policy,
    label: &str,
    build: impl Fn(HeaderValue) -> reqwest::RequestBuilder,
    mut before_resend: impl FnMut() -> Look,
    mut observe: impl FnMut(Event),
) -> Result<Answer, Ended<F, E>>
where
    Look: Future<Output = Result<Option<F>, E>>,
{
    let mut refreshed = false;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = attempt >= policy.max_attempts;
        if pacer.ready().await {
            observe(Event::Paced);
        }
        let authorization = auth.header().await.map_err(Ended::Auth)?;
        #[expect(clippy::disallowed_methods, reason = "a request's duration is logged")]
        let sent = tokio::time::Instant::now();
        let response = match build(authorization.clone()).send().await {
            Ok(response) => response,
            Err(error) => {
                let retryable = error.is_timeout() || error.is_connect() || error.is_request() || error.is_body();
                if !retryable || last {
                    return Err(Ended::Transport(error));
                }
                let reason = super::transport_reason(&error);
                let (method, path) = crate::logging::request_fields(label);
                tracing::warn!(
                    method,
                    path,
                    attempt,
                    "{label}: {reason}; retrying (attempt {attempt} of {})",
                    policy.max_attempts
                );
                wait_then_look(policy.backoff.delay(attempt, jitter()), &mut before_resend, &mut observe).await?;
                continue;
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        pacer.learn(&headers);
        // The path's template is built only for a line that is written: this runs per request.
        if tracing::enabled!(tracing::Level::INFO) {
            let (method, path) = crate::logging::request_fields(label);
            let duration_ms = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::info!(method, path, status, attempt, duration_ms, "{label} -> {status}");
        }
        match verdict(status) {
            Verdict::Success => {
                let body = read_limited(response, policy.max_body).await.map_err(|error| match error {
                    BodyError::TooLarge { limit } => Ended::TooLarge { limit },
                    BodyError::Transport(error) => Ended::Transport(error),
                })?;
                return Ok(Answer { status, headers, body });
            }
            Verdict::Unauthorized if auth.can_refresh() && !refreshed => {
                // One refresh and one retry: the token may have expired in flight.
                auth.reject(&authorization).await;
                refreshed = true;
                observe(Event::Refreshed);
            }
            Verdict::Throttled if !last => {
                let wait = throttled_wait(&headers, &policy.backoff, attempt);
                let (method, path) = crate::logging::request_fields(label);
                let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                tracing::warn!(
                    method,
                    path,
                    status,
                    attempt,
                    wait_ms,
                    "{label} was throttled (429); every request waits {wait:?}"
                );
                pacer.pause(wait);
                wait_then_look(Duration::ZERO, &mut before_resend, &mut observe).await?;
            }
            Verdict::Transient if !last => {
                wait_then_look(policy.backoff.delay(attempt, jitter()), &mut before_resend, &mut observe).await?;
            }
            Verdict::Final if policy.retry_server_errors && status >= 500 && !last => {
                wait_then_look(policy.backoff.delay(attempt, jitter()), &mut before_resend, &mut observe).await?;
            }
            _ => {
                let body = read_limited(response, policy.max_body).await.unwrap_or_default();
                return Ok(Answer { status, headers, body });
            }
        }
    }
}

/// Waits `delay`, counts a retry and gives the caller its look before the re-send.
async fn wait_then_look<F, E, Look>(
    delay: Duration,
    before_resend: &mut impl FnMut() -> Look,
    observe: &mut impl FnMut(Event),
) -> Result<(), Ended<F, E>>
where
    Look: Future<Output = Result<Option<F>, E>>,
{
    observe(Event::Retried);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match before_resend().await {
        Ok(Some(found)) => Err(Ended::Found(found)),
        Ok(None) => Ok(()),
        Err(error) => Err(Ended::Lookup(error)),
    }
}

/// Jitter for the backoff: the one randomness, here at the edge.
#[expect(clippy::disallowed_methods, reason = "retry jitter is the edge's randomness")]
fn jitter() -> f64 {
    fastrand::f64()
}
