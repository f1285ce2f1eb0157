//! `scimform show PLAN_FILE`: a saved plan, as `plan` printed it, without applying it
//! (Terraform's `show`): for a reviewer, or a pipeline step that renders the plan it saved.

use super::{Console, read_file};
use crate::cli::{Format, ShowArgs};
use crate::exit::ExitStatus;
use crate::plan::PlanDocument;
use crate::plan::render::render_markdown;

pub fn run(args: &ShowArgs, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let text = read_file(&args.plan_file)?;
    let document = PlanDocument::from_json(&text).map_err(|error| {
        anyhow::Error::new(error).context(format!("cannot show the plan file `{}`", args.plan_file.display()))
    })?;
    match args.format {
        // As saved, byte for byte: it is what `plan --format json` printed.
        Format::Json => console.out.write_all(document.to_json().as_bytes())?,
        Format::Markdown => console.out.write_all(render_markdown(&document.plan).as_bytes())?,
        Format::Text => console.show_plan(&document.plan)?,
    }
    Ok(ExitStatus::Success)
}
