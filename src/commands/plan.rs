//! `scimform plan -f FILE`: show what would change; optionally save it for `apply FILE`.

use super::{Console, RunState, plan_run, read_drift, write_file};
use crate::cli::{Format, PlanArgs};
use crate::exit::ExitStatus;
use crate::plan::PlanDocument;
use crate::plan::render::render_markdown;
use crate::settings::RunSettings;
use crate::state::render_drift;

pub async fn run(args: &PlanArgs, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let settings = RunSettings::for_plan(args)?;
    let file = &settings.manifest;
    let manifest = crate::manifest::load(file)?;
    let client = super::client_for(&manifest)?;
    let mut state = RunState::open_for(&settings.state, &manifest, file, console.err, false).await?;
    if settings.state.refresh_only {
        if let Some(state) = &mut state {
            state.load().await?;
        }
        let remembered = state.as_ref().and_then(RunState::target);
        let (drift, _) = read_drift(&manifest, &client, remembered, console.progress).await?;
        console.out.write_all(render_drift(&drift).as_bytes())?;
        return Ok(if args.detailed_exitcode && !drift.is_empty() {
            ExitStatus::ChangesPresent
        } else {
            ExitStatus::Success
        });
    }
    if args.out.is_some()
        && let Some(state) = &mut state
    {
        state.read_target_in_full();
    }
    let planned = plan_run(&manifest, &settings, &client, state.as_mut(), console.progress).await?;
    // A plan reads the state and never writes it (as Terraform's): only a run that applies
    // moves it on, under the run lock, so a plan made while an apply runs cannot put back what
    // the apply moved past.
    if state.is_some() {
        planned.describe_reads(console.err)?;
    }
    let document = PlanDocument::new(planned.plan, &file.display().to_string(), &manifest.sha256);
    // The JSON is made once, whether it is shown, saved or both.
    let json = (args.format == Format::Json || args.out.is_some()).then(|| document.to_json());
    match (args.format, &json) {
        (Format::Json, Some(json)) => console.out.write_all(json.as_bytes())?,
        (Format::Markdown, _) => console.out.write_all(render_markdown(&document.plan).as_bytes())?,
        _ => console.show_plan(&document.plan)?,
    }
    if args.show_unmanaged && args.format != Format::Json {
        console.out.write_all(crate::plan::render::text::render_unmanaged(&document.plan).as_bytes())?;
    }
    if let (Some(out), Some(json)) = (&args.out, &json) {
        write_file(out, json)?;
        writeln!(
            console.err,
            "\nSaved the plan to `{0}`. Apply exactly this plan with: scimform apply {0}",
            out.display()
        )?;
    }
    if document.plan.blocked.is_some() {
        return Ok(ExitStatus::Failure);
    }
    Ok(if args.detailed_exitcode && document.plan.has_changes() {
        ExitStatus::ChangesPresent
    } else {
        ExitStatus::Success
    })
}
