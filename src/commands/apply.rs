//! `scimform apply -f FILE [--auto-approve]`: plan, confirm, apply, report.

use std::path::Path;

use anyhow::bail;

use super::{Console, read_and_plan, sources_for};
use crate::apply::{ApplyReport, execute};
use crate::exit::ExitStatus;
use crate::plan::Plan;
use crate::plan::render::render_text;
use crate::target::ScimClient;

pub async fn run(file: &Path, auto_approve: bool, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let manifest = crate::manifest::load(file)?;
    let client = super::client_for(&manifest)?;
    let plan = read_and_plan(&manifest, &sources_for(&manifest)?, &client).await?;
    apply_plan(&plan, &client, manifest.target.concurrency, auto_approve, console).await
}

/// Shows the plan, asks (unless approved), applies, and reports.
pub async fn apply_plan(
    plan: &Plan,
    client: &ScimClient,
    concurrency: usize,
    auto_approve: bool,
    console: &mut Console<'_>,
) -> anyhow::Result<ExitStatus> {
    console.out.write_all(render_text(plan).as_bytes())?;
    if let Some(reason) = &plan.blocked {
        bail!("refusing to apply a blocked plan: {reason}");
    }
    if !plan.has_changes() {
        return Ok(ExitStatus::Success);
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
            return Ok(ExitStatus::Failure);
        }
    }
    let report = execute(plan, client, concurrency).await;
    let status = render_report(&report, console)?;
    writeln!(console.err, "{}", describe_requests(&client.stats()))?;
    Ok(status)
}

/// `Requests: 2 GET 200, 1 PATCH 204; 1 retry, 0 throttled waits, 0 token refreshes.`
fn describe_requests(stats: &crate::target::client::RequestStats) -> String {
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
    writeln!(console.err)?;
    for outcome in &report.outcomes {
        match &outcome.result {
            Ok(status) => writeln!(console.err, "{}: {} -> {status}", outcome.resource, outcome.request)?,
            Err(error) => writeln!(console.err, "{}: {} failed: {error}", outcome.resource, outcome.request)?,
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
                writeln!(console.err, "  - {}: {error}", failure.resource)?;
            }
        }
        Ok(ExitStatus::Failure)
    }
}
