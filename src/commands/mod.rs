//! One module per subcommand: orchestration only. The pipeline shared by `plan`, `apply` and
//! `demo` lives here: sources -> desired state, target -> current state, then the planner.

pub mod apply;
pub mod demo;
pub mod explain;
pub mod init;
pub mod plan;
pub mod schema;
pub mod show;
pub mod state;
pub mod validate;

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;

pub use crate::pipeline::{Planned, client_for, plan_run, read_and_plan, read_desired, read_drift, sources_for};
use crate::plan::Plan;
use crate::progress::Progress;
pub use crate::state::{RunState, SourceReads, TargetUpdate};

/// Where a command writes: data (the plan) to `out`, everything else to `err`. `input` is the
/// terminal to ask for confirmation on, when there is one.
pub struct Console<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    pub input: Option<&'a mut dyn BufRead>,
    /// `out` is a terminal and `NO_COLOR` is not set.
    pub color: bool,
    /// Progress bars on stderr (visible when it is a terminal).
    pub progress: Progress,
    /// `err` takes JSON log lines (`--log-format json`): a command writes its structured lines
    /// as objects, and every other line is made one.
    pub json_logs: bool,
}

impl Console<'_> {
    /// Text for `out`: coloured when that is wanted.
    pub fn paint(&self, text: &str) -> String {
        if self.color { crate::plan::render::colorize(text) } else { text.to_owned() }
    }

    /// The plan as text on `out`, its warnings on `err`.
    pub fn show_plan(&mut self, plan: &Plan) -> std::io::Result<()> {
        self.out.write_all(self.paint(&crate::plan::render::render_text(plan)).as_bytes())?;
        self.err.write_all(crate::plan::render::text::render_warnings(plan).as_bytes())
    }
}

/// Writes a file a command produces (a plan, a report); the commands' one way of writing files.
#[expect(clippy::disallowed_methods, reason = "commands are an edge: they write the files asked for")]
pub fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write `{}`", path.display()))
}

/// Reads a file a command is given (a saved plan).
#[expect(clippy::disallowed_methods, reason = "commands are an edge: they read the files they are given")]
pub fn read_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))
}
