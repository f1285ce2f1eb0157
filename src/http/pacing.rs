//! Pacing: at most `requests_per_minute`, spread evenly (a GCRA limiter from `governor`), and a
//! shared pause the server can impose: a 429's `Retry-After`, or Genesys's
//! `inin-ratelimit-count/-allowed/-reset` headers when the budget is nearly spent. Every request
//! waits for both, so one refusal slows all of them down before the next is refused too.
#![allow(clippy::disallowed_methods, reason = "pacing waits on the clock and jitters retries")]

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, RETRY_AFTER};
use tokio::time::Instant;

use super::retry::{Backoff, retry_after};

#[derive(Debug)]
pub struct Pacer {
    limiter: Option<DefaultDirectRateLimiter>,
    resume_at: Mutex<Option<Instant>>,
}

/// How long to wait after a 429: the `Retry-After` header (seconds or an HTTP-date), else the
/// backoff for this attempt. Shared by the SCIM client and the Graph source.
pub fn throttled_wait(headers: &HeaderMap, backoff: &Backoff, attempt: u32) -> Duration {
    #[expect(clippy::disallowed_methods, reason = "an HTTP-date in Retry-After is relative to the wall clock")]
    let now = std::time::SystemTime::now();
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after(v, now))
        .unwrap_or_else(|| backoff.delay(attempt, fastrand::f64()))
}

/// Below this many requests left in Genesys's window, wait for the window to reset.
const LOW_WATER: u64 = 2;

impl Pacer {
    pub fn new(requests_per_minute: Option<u32>) -> Self {
        let limiter = requests_per_minute.and_then(NonZeroU32::new).map(|rpm| {
            // No bursts: requests are spread evenly over the minute.
            RateLimiter::direct(Quota::per_minute(rpm).allow_burst(NonZeroU32::MIN))
        });
        Self { limiter, resume_at: Mutex::new(None) }
    }

    /// Waits until a request may be sent. Returns whether it had to wait for a server-imposed
    /// pause (a throttled wait, counted in the apply summary).
    pub async fn ready(&self) -> bool {
        let resume_at = *self.resume_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut paused = false;
        if let Some(at) = resume_at.filter(|at| *at > Instant::now()) {
            tokio::time::sleep_until(at).await;
            paused = true;
        }
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        paused
    }

    /// Holds every request back for `delay`.
    pub fn pause(&self, delay: Duration) {
        let until = Instant::now() + delay;
        let mut resume_at = self.resume_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if resume_at.is_none_or(|at| at < until) {
            *resume_at = Some(until);
        }
    }

    /// Learns from Genesys's rate-limit headers: when the window is nearly used up, pause until
    /// it resets rather than wait to be refused.
    pub fn learn(&self, headers: &HeaderMap) {
        // Names made once, not parsed from a string on every answer.
        const COUNT: HeaderName = HeaderName::from_static("inin-ratelimit-count");
        const ALLOWED: HeaderName = HeaderName::from_static("inin-ratelimit-allowed");
        const RESET: HeaderName = HeaderName::from_static("inin-ratelimit-reset");
        let number = |name: &HeaderName| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
        if let (Some(count), Some(allowed), Some(reset)) = (number(&COUNT), number(&ALLOWED), number(&RESET))
            && allowed.saturating_sub(count) <= LOW_WATER
        {
            self.pause(Duration::from_secs(reset.min(120)));
        }
    }
}
