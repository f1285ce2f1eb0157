//! `scimform validate -f FILE`: load and check a manifest; no network.

use std::path::Path;

use super::Console;
use crate::exit::ExitStatus;

pub fn run(file: &Path, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    crate::manifest::load(file)?;
    writeln!(console.out, "The manifest `{}` is valid.", file.display())?;
    Ok(ExitStatus::Success)
}
