//! `scimform plan -f FILE`: show what would change; optionally save it for `apply FILE`.

use super::{Console, read_and_plan, sources_for, write_file};
use crate::cli::{Format, PlanArgs};
use crate::exit::ExitStatus;
use crate::plan::PlanDocument;
use crate::plan::focus::focus;
use crate::plan::render::{render_markdown, render_text};

pub async fn run(args: &PlanArgs, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let file = &args.manifest.file;
    let manifest = crate::manifest::load(file)?;
    let client = super::client_for(&manifest)?;
    let plan = read_and_plan(&manifest, &sources_for(&manifest)?, &client, console.progress).await?;
    let plan = focus(plan, &args.targets, &manifest.users.deprovision);
    let document = PlanDocument::new(plan, &file.display().to_string(), &manifest.sha256);
    let shown = match args.format {
        Format::Text => console.paint(&render_text(&document.plan)),
        Format::Markdown => render_markdown(&document.plan),
        Format::Json => document.to_json(),
    };
    console.out.write_all(shown.as_bytes())?;
    if let Some(out) = &args.out {
        write_file(out, &document.to_json())?;
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
