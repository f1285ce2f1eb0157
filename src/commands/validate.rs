//! `scimform validate -f FILE`: load and check a manifest; no network.

use std::path::Path;

use super::Console;
use crate::exit::ExitStatus;
use crate::manifest::Missing;

/// A reference that cannot be resolved here (a secret kept out of a pull request's checks) is a
/// located warning: the manifest is valid, and `plan` and `apply` will need it.
pub fn run(file: &Path, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let loaded = crate::manifest::load_with(file, Missing::Warning)?;
    if let Some(warnings) = &loaded.warnings {
        write!(console.err, "{}", crate::report::render_manifest_warnings(warnings))?;
        writeln!(console.err, "\n`plan` and `apply` need every reference above resolved.")?;
    }
    writeln!(console.out, "The manifest `{}` is valid.", file.display())?;
    Ok(ExitStatus::Success)
}
