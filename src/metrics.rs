//! `apply --metrics-file`: the run in Prometheus text format, for node_exporter's textfile
//! collector, so an alert can say "no successful run for an hour". Written atomically (a
//! temporary file renamed over the old one); the time of the last successful run is carried
//! over from the file a failed run replaces.
#![allow(clippy::disallowed_methods, reason = "metrics are an edge: their file, the clock")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::apply::ApplyReport;
use crate::service::client::RequestStats;

/// What the metrics say of a run.
pub struct RunFacts<'a> {
    /// `applied`, `failed`, `no_changes`, `cancelled`, `interrupted` or `error`.
    pub result: &'static str,
    pub succeeded: bool,
    pub duration: std::time::Duration,
    pub report: Option<&'a ApplyReport>,
    pub stats: Option<&'a RequestStats>,
    pub users: Option<usize>,
}

const LAST_SUCCESS: &str = "scimform_last_success_timestamp_seconds";

/// Writes the metrics of `facts` to `path`, atomically.
pub fn write(path: &Path, facts: &RunFacts<'_>) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now().as_second();
    let last_success = if facts.succeeded {
        Some(now)
    } else {
        std::fs::read_to_string(path).ok().and_then(|text| last_success_in(&text))
    };
    let text = render(facts, now, last_success);
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, text)
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("cannot write the metrics file `{}`", path.display()))
}

/// The metrics as Prometheus text. Pure: `now` and the last success are passed in.
pub fn render(facts: &RunFacts<'_>, now: i64, last_success: Option<i64>) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let results = ["applied", "failed", "no_changes", "cancelled", "interrupted", "error"];
    let samples: Vec<(String, f64)> =
        results.iter().map(|r| (format!("{{result=\"{r}\"}}"), f64::from(u8::from(*r == facts.result)))).collect();
    metric("scimform_run_result", "The last run's result: 1 for the one it had.", &samples);
    metric(
        "scimform_run_duration_seconds",
        "How long the last run took.",
        &[(String::new(), facts.duration.as_secs_f64())],
    );
    metric("scimform_run_timestamp_seconds", "When the last run ended.", &[(String::new(), seconds(now))]);
    // Operations by resource, method and outcome: what the report lists, counted.
    let mut operations: BTreeMap<(&str, String, String), usize> = BTreeMap::new();
    for outcome in facts.report.map(|r| r.outcomes.as_slice()).unwrap_or_default() {
        let resource = outcome.subject.kind();
        let method = outcome.request.split_whitespace().next().unwrap_or("none").to_owned();
        let status = match &outcome.result {
            Ok(status) => status.to_string(),
            Err(failure) => failure.status.map_or_else(|| "none".to_owned(), |s| s.to_string()),
        };
        *operations.entry((resource, method, status)).or_default() += 1;
    }
    let samples: Vec<(String, f64)> = operations
        .iter()
        .map(|((resource, method, status), n)| {
            (format!("{{resource=\"{resource}\",method=\"{method}\",status=\"{status}\"}}"), count(*n))
        })
        .collect();
    metric("scimform_operations", "Requests the last run sent, by resource, method and answer.", &samples);
    if let Some(users) = facts.users {
        metric(
            "scimform_users_managed",
            "Users the manifest manages (in its sources and scope).",
            &[(String::new(), count(users))],
        );
    }
    if let Some(stats) = facts.stats {
        metric("scimform_retries", "Requests the last run sent again.", &[(String::new(), count(stats.retries))]);
        metric(
            "scimform_throttled_waits",
            "Times the last run waited for the service's rate limit.",
            &[(String::new(), count(stats.throttled_waits))],
        );
    }
    if let Some(at) = last_success {
        metric(LAST_SUCCESS, "When a run last ended successfully.", &[(String::new(), seconds(at))]);
    }
    out
}

#[expect(clippy::cast_precision_loss, reason = "counts are far below 2^52")]
fn count(n: usize) -> f64 {
    n as f64
}

#[expect(clippy::cast_precision_loss, reason = "seconds since 1970 are far below 2^52")]
fn seconds(at: i64) -> f64 {
    at as f64
}

/// The last success a metrics file records.
fn last_success_in(text: &str) -> Option<i64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(LAST_SUCCESS)?.trim();
        value.parse::<f64>().ok().map(|v| {
            #[expect(clippy::cast_possible_truncation, reason = "a timestamp in seconds")]
            let v = v as i64;
            v
        })
    })
}
