//! When to retry a request, and how long to wait first (pure: the caller supplies jitter and
//! the current time).

use std::time::{Duration, SystemTime};

/// What a response status means for retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Success,
    /// 429: the server asks us to slow down; wait `Retry-After` (or back off) and try again.
    Throttled,
    /// 502, 503, 504: a passing fault; back off and try again.
    Transient,
    /// 401: refresh the token once and try again.
    Unauthorized,
    /// Any other status: final, reported with the SCIM error.
    Final,
}

pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Success,
        401 => Verdict::Unauthorized,
        429 => Verdict::Throttled,
        502..=504 => Verdict::Transient,
        _ => Verdict::Final,
    }
}

/// Exponential backoff with full jitter, capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_millis(250), cap: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (1-based); `jitter` in `[0, 1)` spreads concurrent
    /// clients apart ("full jitter"), never below a tenth of the step.
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let step = self.base.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1).min(16))).min(self.cap);
        step.mul_f64(0.1 + 0.9 * jitter.clamp(0.0, 1.0))
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;

    /// The whole policy at a glance; a changed policy shows up as a diff here.
    #[test]
    fn statuses_and_what_they_mean() {
        let mut table = String::new();
        for status in [200, 201, 204, 301, 304, 400, 401, 403, 404, 409, 412, 429, 500, 501, 502, 503, 504] {
            let _ = writeln!(table, "{status} {:?}", verdict(status));
        }
        insta::assert_snapshot!(table, @r"
        200 Success
        201 Success
        204 Success
        301 Final
        304 Final
        400 Final
        401 Unauthorized
        403 Final
        404 Final
        409 Final
        412 Final
        429 Throttled
        500 Final
        501 Final
        502 Transient
        503 Transient
        504 Transient
        ");
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let b = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(40));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = httpdate::parse_http_date("Mon, 23 Nov 2026 09:00:00 GMT").unwrap();
        assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after("Mon, 23 Nov 2026 09:00:07 GMT", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("Mon, 23 Nov 2026 08:59:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
    }
}
