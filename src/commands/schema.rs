//! `scimform schema`: print the manifest's JSON Schema (`schema/manifest.schema.json`).

use super::Console;
use crate::exit::ExitStatus;

pub fn run(console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    console.out.write_all(crate::manifest::raw::json_schema().as_bytes())?;
    Ok(ExitStatus::Success)
}
