//! `scimform plan -f FILE`: show what would change.

use std::path::Path;

use super::{Console, read_and_plan, sources_for};
use crate::exit::ExitStatus;
use crate::plan::render::render_text;

pub async fn run(file: &Path, detailed_exitcode: bool, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let manifest = crate::manifest::load(file)?;
    let client = super::client_for(&manifest)?;
    let plan = read_and_plan(&manifest, &sources_for(&manifest)?, &client).await?;
    console.out.write_all(render_text(&plan).as_bytes())?;
    if plan.blocked.is_some() {
        return Ok(ExitStatus::Failure);
    }
    Ok(if detailed_exitcode && plan.has_changes() { ExitStatus::ChangesPresent } else { ExitStatus::Success })
}
