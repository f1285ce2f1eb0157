//! `scimform apply PLAN_FILE` applies a reviewed plan exactly, or nothing if the target changed
//! since; `scimform apply -f FILE [--auto-approve]` plans, confirms and applies in one go. Both
//! hold the run lock, honour the deprovisioning rails and can write a JSON report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use super::{Console, RunState, plan_run, read_drift, read_file, write_file};
use crate::apply::fold::fold_clocks;
use crate::apply::{ApplyReport, check_preconditions};
use crate::cli::ApplyArgs;
use crate::exit::ExitStatus;
use crate::lock::RunLock;
use crate::pipeline;
use crate::plan::{Plan, PlanDocument};
use crate::service::ScimClient;
use crate::settings::RunSettings;
use crate::state::render_drift;

/// What a run did, for the exit status and the report.
pub struct RunEnding {
    pub status: ExitStatus,
    /// `None` when nothing was sent (no changes, or the apply was cancelled).
    pub report: Option<ApplyReport>,
    pub result: &'static str,
}

/// What a run did, kept outside it so that a run that ends in an error still reports it.
#[derive(Default)]
struct RunRecord {
    /// Every request sent and its outcome.
    sent: Option<ApplyReport>,
    /// The target's request counts (retries, throttled waits).
    stats: Option<crate::service::client::RequestStats>,
    /// Users the manifest manages (the desired state's).
    users: Option<usize>,
}

pub async fn run(args: &ApplyArgs, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    #[expect(clippy::disallowed_methods, reason = "a command is an edge: it times the run for its metrics")]
    let started = std::time::Instant::now();
    let mut record = RunRecord::default();
    let outcome = match &args.plan_file {
        Some(plan_file) => apply_saved(plan_file, args, console, &mut record).await,
        None => apply_fresh(args, console, &mut record).await,
    };
    let sent = record.sent.as_ref();
    if let Some(path) = &args.report {
        write_file(path, &report_json(&outcome, sent))?;
    }
    if let Some(path) = &args.metrics_file {
        let result = outcome.as_ref().map_or("error", |o| o.result);
        let facts = crate::metrics::RunFacts {
            result,
            succeeded: outcome.as_ref().is_ok_and(|o| o.status == ExitStatus::Success),
            duration: started.elapsed(),
            report: sent,
            stats: record.stats.as_ref(),
            users: record.users,
        };
        crate::metrics::write(path, &facts)?;
    }
    if let (Err(_), Some(sent)) = (&outcome, sent)
        && sent.succeeded() > 0
    {
        writeln!(console.err, "\n{} write(s) landed before the run stopped.", sent.succeeded())?;
    }
    outcome.map(|o| o.status)
}

async fn apply_fresh(args: &ApplyArgs, console: &mut Console<'_>, record: &mut RunRecord) -> anyhow::Result<RunEnding> {
    let file = args.file.as_deref().context("apply needs a manifest (`-f FILE`) or a saved plan")?;
    let settings = RunSettings::for_apply(args, file)?;
    let manifest = crate::manifest::load(file)?;
    let _lock = run_lock(&settings, console).await?;
    let client = super::client_for(&manifest)?;
    let mut state = RunState::open_for(&settings.state, &manifest, file, console.err, true).await?;
    if let Some(days) = manifest.users.deprovision.delete_after_days
        && state.is_none()
    {
        bail!(
            "`users.deprovision.delete_after_days: {days}` needs a state, which remembers when scimform disabled each user, and this run has none; nothing was applied"
        );
    }
    if settings.state.refresh_only {
        if let Some(state) = &mut state {
            state.load().await?;
        }
        let remembered = state.as_ref().and_then(RunState::target);
        let (drift, now) = read_drift(&manifest, &client, remembered, console.progress).await?;
        console.out.write_all(render_drift(&drift).as_bytes())?;
        if let Some(state) = &mut state {
            state.remember_target(&manifest, now).await?;
        }
        writeln!(console.err, "\nThe state now remembers the target as read; nothing was written to the target.")?;
        return Ok(RunEnding { status: ExitStatus::Success, report: None, result: "no_changes" });
    }
    let mut planned = plan_run(&manifest, &settings, &client, state.as_mut(), console.progress).await?;
    if state.is_some() {
        planned.describe_reads(console.err)?;
    }
    let reads = std::mem::take(&mut planned.sources);
    record.users = Some(planned.users);
    let plan = std::mem::take(&mut planned.plan);
    let approved = confirm(&plan, args.auto_approve, &settings.allow, console)?;
    let mut settled = None;
    let (outcome, target) = if let Some(done) = approved {
        // Nothing was written: a remembered target stays as it is; a full read is remembered,
        // and a plan that changes nothing stands until its inputs change.
        settled = planned.settled.take();
        (Ok(done), planned.target_unwritten())
    } else {
        let applied = pipeline::apply(&manifest, &plan, &mut planned, &client, console.progress).await;
        record.sent = Some(applied.report.clone());
        record.stats = Some(client.stats());
        for warning in &applied.warnings {
            writeln!(console.err, "Warning: {warning}")?;
        }
        if let Some((read_again, again)) = &applied.replanned {
            writeln!(
                console.err,
                "\n{read_again} resource(s) changed in the target since they were read: read again and planned again."
            )?;
            console.show_plan(again)?;
        }
        (finish(applied.report, &client, console), applied.target)
    };
    // The sources' watermarks move either way: the desired state is always built from every
    // record, so a write that failed is planned again, never forgotten.
    if let Some(state) = &mut state {
        let clocks = fold_clocks(state.clocks().clone(), &plan, record.sent.as_ref(), settings.now, Some(&plan.gone));
        state.set_clocks(clocks);
        state.saw_modified(client.newest_modified());
        state.save(&manifest, target, reads, settled).await?;
    }
    outcome
}

async fn apply_saved(
    plan_file: &Path,
    args: &ApplyArgs,
    console: &mut Console<'_>,
    record: &mut RunRecord,
) -> anyhow::Result<RunEnding> {
    let document = PlanDocument::from_json(&read_file(plan_file)?)
        .with_context(|| format!("cannot apply the plan file `{}`", plan_file.display()))?;
    let manifest_path = args.file.clone().unwrap_or_else(|| PathBuf::from(&document.manifest.path));
    let manifest = crate::manifest::load(&manifest_path)?;
    if manifest.sha256 != document.manifest.sha256 {
        bail!(
            "the manifest `{}` changed since the plan was made (sha256 {} now, {} in the plan); nothing was applied: plan again and review the new plan",
            manifest_path.display(),
            manifest.sha256,
            document.manifest.sha256
        );
    }
    let mut settings = RunSettings::for_apply(args, &manifest_path)?;
    let _lock = run_lock(&settings, console).await?;
    // The plan is applied as it is; the state only learns that the target changed under it.
    settings.state.refresh = true;
    let mut run_state = RunState::open_for(&settings.state, &manifest, &manifest_path, console.err, false).await?;
    let client = super::client_for(&manifest)?;
    let plan = &document.plan;
    console.show_plan(plan)?;
    enforce_rails(plan, &settings.allow)?;
    if !plan.has_changes() {
        return Ok(RunEnding { status: ExitStatus::Success, report: None, result: "no_changes" });
    }
    let spinner = console.progress.spinner("Checking that the target is as the plan found it");
    let stale =
        check_preconditions(plan, &client, &manifest.users.managed_paths(), manifest.target.concurrency).await?;
    spinner.finish_and_clear();
    if !stale.is_empty() {
        let mut message = format!(
            "the target changed since the plan was made: {} resource(s) are not as the plan found them; nothing was applied. Plan again and review the new plan:",
            stale.len()
        );
        for s in &stale {
            let _ = write!(message, "\n  - {}: {}", s.subject, s.what);
        }
        bail!(message);
    }
    // The plan was reviewed: it runs without asking, as Terraform's `apply PLANFILE` does.
    let report = pipeline::send(plan, &client, manifest.target.concurrency, console.progress).await;
    record.sent = Some(report.clone());
    record.stats = Some(client.stats());
    let outcome = finish(report, &client, console);
    // The next run reads the target in full (its sources stay where they got to); the users
    // it disabled start their deprovision clocks.
    if let Some(state) = &mut run_state {
        state.set_clocks(fold_clocks(state.clocks().clone(), plan, record.sent.as_ref(), settings.now, None));
        state.save_clocks().await?;
        state.forget_target().await?;
    }
    outcome
}

/// The lock file the settings name (none when the state is in PostgreSQL: its advisory lock is
/// the run lock then).
async fn run_lock(settings: &RunSettings, console: &mut Console<'_>) -> anyhow::Result<Option<RunLock>> {
    let Some(path) = &settings.lock_file else { return Ok(None) };
    Ok(Some(RunLock::acquire_within(path, console.err, settings.state.lock_wait).await?))
}

/// The safety rails: a blocked plan needs `--allow NAME=N` for each limit it goes over, N at
/// least the plan's count; an N given caps any plan it is given to.
fn enforce_rails(plan: &Plan, allow: &BTreeMap<String, usize>) -> anyhow::Result<()> {
    for (name, allowed) in allow {
        let Some(count) = crate::plan::rails::count(plan, name) else {
            bail!(
                "`--allow {name}={allowed}` names no limit; the limits are `deprovision`, `attribute_changes.<SCIM path>` and `removals.<pairing>`; nothing was applied"
            );
        };
        if count > *allowed {
            bail!("the plan goes over `--allow {name}={allowed}` ({count}); nothing was applied");
        }
    }
    if let Some(blocked) = &plan.blocked {
        let missing: Vec<&crate::plan::LimitExceeded> =
            blocked.limits.iter().filter(|l| !allow.contains_key(&l.name)).collect();
        if !missing.is_empty() {
            let reasons: Vec<&str> = missing.iter().map(|l| l.reason.as_str()).collect();
            let flags: Vec<String> = missing.iter().map(|l| format!("--allow {}={}", l.name, l.count)).collect();
            bail!(
                "refusing to apply a blocked plan: {}. Nothing was applied. If this is intended, review it and pass `{}`",
                reasons.join("; "),
                flags.join(" ")
            );
        }
    }
    Ok(())
}

/// Shows the plan, checks the rails, asks (unless approved), applies, and reports.
pub async fn apply_plan(
    plan: &Plan,
    client: &ScimClient,
    concurrency: usize,
    auto_approve: bool,
    allow: &BTreeMap<String, usize>,
    console: &mut Console<'_>,
) -> anyhow::Result<RunEnding> {
    if let Some(done) = confirm(plan, auto_approve, allow, console)? {
        return Ok(done);
    }
    let report = pipeline::send(plan, client, concurrency, console.progress).await;
    finish(report, client, console)
}

/// Shows the plan, checks the rails and asks (unless approved): `Some` when the run ends here
/// (nothing to do, or cancelled), `None` to go on and apply.
fn confirm(
    plan: &Plan,
    auto_approve: bool,
    allow: &BTreeMap<String, usize>,
    console: &mut Console<'_>,
) -> anyhow::Result<Option<RunEnding>> {
    console.show_plan(plan)?;
    enforce_rails(plan, allow)?;
    if !plan.has_changes() {
        return Ok(Some(RunEnding { status: ExitStatus::Success, report: None, result: "no_changes" }));
    }
    if !auto_approve {
        let Some(input) = console.input.as_mut() else {
            bail!(
                "apply needs confirmation, and there is no terminal to ask on; pass `--auto-approve` to apply without asking"
            );
        };
        write!(
            console.err,
            "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
        )?;
        console.err.flush()?;
        let mut answer = String::new();
        input.read_line(&mut answer)?;
        if answer.trim() != "yes" {
            writeln!(console.err, "\nApply cancelled.")?;
            return Ok(Some(RunEnding { status: ExitStatus::Failure, report: None, result: "cancelled" }));
        }
    }
    Ok(None)
}

/// The one account of what a run sent: each request and its outcome, the summary, and the
/// exit status that goes with them.
fn finish(report: ApplyReport, client: &ScimClient, console: &mut Console<'_>) -> anyhow::Result<RunEnding> {
    let status = render_report(&report, console)?;
    writeln!(console.err, "{}", describe_requests(&client.stats()))?;
    if let Some(signal) = crate::signals::interrupted() {
        writeln!(
            console.err,
            "\nStopped by {}: no write was sent after it; the {} sent are reported above, and the next run reads the target in full.",
            signal.name(),
            report.outcomes.len()
        )?;
        return Ok(RunEnding { status: ExitStatus::Interrupted(signal), report: Some(report), result: "interrupted" });
    }
    let result = if status == ExitStatus::Success { "applied" } else { "failed" };
    Ok(RunEnding { status, report: Some(report), result })
}

/// `Requests: 2 GET 200, 1 PATCH 204; 1 retry, 0 throttled waits, 0 token refreshes.`
fn describe_requests(stats: &crate::service::client::RequestStats) -> String {
    let counts: Vec<String> =
        stats.by_status.iter().map(|((method, status), n)| format!("{n} {method} {status}")).collect();
    format!(
        "Requests: {}; {} retr{}, {} throttled wait(s), {} token refresh(es).",
        if counts.is_empty() { "none".to_owned() } else { counts.join(", ") },
        stats.retries,
        if stats.retries == 1 { "y" } else { "ies" },
        stats.throttled_waits,
        stats.token_refreshes
    )
}

fn render_report(report: &ApplyReport, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    if console.json_logs {
        return log_report(report, console);
    }
    writeln!(console.err)?;
    for outcome in &report.outcomes {
        let note = outcome.note.map(|n| format!(" ({n})")).unwrap_or_default();
        match &outcome.result {
            Ok(status) => writeln!(console.err, "{}: {} -> {status}{note}", outcome.subject, outcome.request)?,
            Err(error) if outcome.superseded && outcome.note.is_some() => {
                let status = error.status.map_or_else(|| "refused".to_owned(), |s| s.to_string());
                let note = outcome.note.unwrap_or_default();
                writeln!(console.err, "{}: {} -> {status} ({note})", outcome.subject, outcome.request)?;
            }
            Err(error) if outcome.superseded => {
                let why = if outcome.request.starts_with("POST") {
                    "it exists in the target already"
                } else {
                    "it changed in the target since it was read"
                };
                let status = error.status.map_or_else(|| "refused".to_owned(), |s| s.to_string());
                let (resource, request) = (&outcome.subject, &outcome.request);
                writeln!(console.err, "{resource}: {request} -> {status} ({why}: read again and planned again)")?;
            }
            Err(error) => writeln!(console.err, "{}: {} failed: {error}", outcome.subject, outcome.request)?,
        }
    }
    let failed = report.failures().count();
    if failed == 0 {
        writeln!(console.err, "\nApply complete! {} operation(s) applied.", report.succeeded())?;
        Ok(ExitStatus::Success)
    } else {
        writeln!(
            console.err,
            "\nApply finished with errors: {failed} operation(s) failed, {} applied:",
            report.succeeded()
        )?;
        for failure in report.failures() {
            if let Err(error) = &failure.result {
                writeln!(console.err, "  - {}: {error}", failure.subject)?;
            }
        }
        Ok(ExitStatus::Failure)
    }
}

/// The report as JSON log lines: one per request, named by the resource's kind and target id
/// (never its name, a person's attribute), then the summary.
fn log_report(report: &ApplyReport, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    use crate::logging::{Level, json_line, request_fields};
    for outcome in &report.outcomes {
        let (method, path) = request_fields(&outcome.request);
        let id = outcome
            .request
            .rsplit_once('/')
            .map(|(_, id)| id)
            .filter(|_| path.ends_with("{id}"))
            .or(outcome.created_id.as_deref())
            .or_else(|| outcome.response.as_ref().and_then(|r| r.body.as_ref()).and_then(|b| b["id"].as_str()));
        let kind = outcome.subject.kind();
        let (level, result, status) = match &outcome.result {
            Ok(status) => (Level::Info, "applied", Some(*status)),
            Err(failure) if outcome.superseded => (Level::Warn, "planned_again", failure.status),
            Err(failure) => (Level::Error, "failed", failure.status),
        };
        let fields = serde_json::json!({
            "resource": kind, "id": id, "method": method, "path": path, "status": status, "result": result,
        });
        let serde_json::Value::Object(fields) = fields else { continue };
        console.err.write_all(json_line(level, "operation", fields).as_bytes())?;
    }
    let failed = report.failures().count();
    let counts = serde_json::json!({"applied": report.succeeded(), "failed": failed});
    let serde_json::Value::Object(counts) = counts else { return Ok(ExitStatus::Failure) };
    if failed == 0 {
        console.err.write_all(json_line(Level::Info, "apply complete", counts).as_bytes())?;
        Ok(ExitStatus::Success)
    } else {
        console.err.write_all(json_line(Level::Error, "apply finished with errors", counts).as_bytes())?;
        Ok(ExitStatus::Failure)
    }
}

/// The `--report` file: every operation and its outcome, or why nothing was applied.
#[derive(Serialize)]
struct ReportDocument<'a> {
    format_version: u32,
    scimform_version: &'static str,
    /// `applied`, `failed`, `no_changes`, `cancelled` or `error`.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    applied: usize,
    failed: usize,
    operations: Vec<ReportOperation<'a>>,
}

#[derive(Serialize)]
struct ReportOperation<'a> {
    resource: String,
    request: &'a str,
    /// The HTTP status the service answered, on success and on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    /// Refused as stale, then read again and planned again (the operations after it say how
    /// that ended): neither applied nor failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    superseded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

/// The report document; when the run ended in an error, `sent` still lists every request that
/// was sent before it.
fn report_json(outcome: &anyhow::Result<RunEnding>, sent: Option<&ApplyReport>) -> String {
    let (result, error, report) = match outcome {
        Ok(o) => (o.result, None, o.report.as_ref()),
        Err(e) => ("error", Some(crate::report::one_line(e)), sent),
    };
    let operations: Vec<ReportOperation> = report
        .map(|r| {
            r.outcomes
                .iter()
                .map(|o| ReportOperation {
                    resource: o.subject.to_string(),
                    request: &o.request,
                    status: match &o.result {
                        Ok(status) => Some(*status),
                        Err(failure) => failure.status,
                    },
                    error: o.result.as_ref().err().map(|f| f.message.as_str()),
                    superseded: o.superseded,
                    note: o.note,
                })
                .collect()
        })
        .unwrap_or_default();
    let document = ReportDocument {
        format_version: 1,
        scimform_version: env!("CARGO_PKG_VERSION"),
        result,
        error,
        applied: report.map_or(0, ApplyReport::succeeded),
        failed: report.map_or(0, |r| r.failures().count()),
        operations,
    };
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}
