//! scimform: declarative identity provisioning over SCIM 2.0.
//!
//! ```text
//! manifest ──> sources ──> records ──> desired state ─┐
//!                                                     ├──> plan (pure diff) ──> render (text | markdown | json)
//! service (SCIM) ──> current state ───────────────────┘                  └──> apply ──> service (SCIM)
//!         state: what the last run left (sources' watermarks and records, the target as left)
//! ```
//!
//! Modules in the order the data flows (`reorder_modules = false` in rustfmt.toml keeps it). The
//! pure core (`secret` to `plan`) does no I/O; ARCHITECTURE.md has the map and its rules.

// The manifest and its vocabulary.
pub mod secret;
pub mod causes;
pub mod text;
pub mod yaml;
pub mod manifest;
pub mod mapping;
pub mod scim;
// The world as it should be.
pub mod record;
pub mod desired;
// The world as it is.
pub mod current;
// The difference, as a value.
pub mod plan;
// The edges: the wire, sources, the SCIM service, applying, what a run leaves.
pub mod http;
pub mod tls;
pub mod source;
pub mod service;
pub mod apply;
pub mod state;
pub mod lock;
pub mod signals;
pub mod pipeline;
// The command line.
pub mod logging;
pub mod progress;
pub mod report;
pub mod metrics;
pub mod exit;
pub mod cli;
pub mod settings;
pub mod commands;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::commands::Console;
use crate::exit::ExitStatus;

/// Runs scimform with the given arguments; the binary's `main` is only this.
#[expect(clippy::disallowed_methods, reason = "the CLI's edge: NO_COLOR")]
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(u8::from(error.use_stderr()));
        }
    };
    let json_logs = cli.log_format == cli::LogFormat::Json;
    logging::init(cli.command.verbose(), cli.quiet, std::env::var("RUST_LOG").ok(), json_logs);
    let stdout = std::io::stdout();
    let stdin = std::io::stdin();
    let mut out = stdout.lock();
    // Not locked for the whole run: the progress bars' ticker thread writes to stderr too.
    let mut err: Box<dyn std::io::Write> =
        if json_logs { Box::new(logging::JsonLines::new(std::io::stderr())) } else { Box::new(std::io::stderr()) };
    let mut input = stdin.lock();
    let interactive = std::io::stdin().is_terminal();
    let color = match cli.color {
        cli::ColorChoice::Always => true,
        cli::ColorChoice::Never => false,
        cli::ColorChoice::Auto => wants_color(std::io::stdout().is_terminal(), std::env::var_os("NO_COLOR").as_deref()),
    };
    let mut console = Console {
        out: &mut out,
        err: &mut err,
        input: interactive.then_some(&mut input as &mut dyn std::io::BufRead),
        color,
        progress: progress::Progress::new(std::io::stderr().is_terminal() && !cli.quiet && !json_logs),
        json_logs,
    };
    // One worker beside the main thread: it hears signals even while the command blocks it (a
    // confirmation prompt reading the terminal).
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.spawn(watch_signals());
            runtime.block_on(dispatch(cli.command, &mut console))
        });
    match result {
        Ok(ExitStatus::Interrupted(signal)) => {
            let _ = writeln!(console.err, "\nInterrupted by {}.", signal.name());
            ExitStatus::Interrupted(signal).into()
        }
        Ok(status) => status.into(),
        // `scimform plan | head`: the reader has gone; end quietly, as Unix tools do.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = console.out.flush();
            let text = if json_logs { report::error_line(&error) } else { report::render_error(&error) };
            let _ = console.err.write_all(text.as_bytes());
            let _ = console.err.flush();
            ExitStatus::Failure.into()
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Colours only on a terminal, and never when `NO_COLOR` is set to anything but the empty
/// string (https://no-color.org).
fn wants_color(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// How long an apply interrupted while writing may take to let its writes in flight finish and
/// record what landed, before the process ends anyway.
const WIND_DOWN: std::time::Duration = std::time::Duration::from_secs(10);

/// Stops the run on SIGINT or SIGTERM: at once when it is not writing (the kernel releases the
/// run lock, a PostgreSQL state's lock ends with its connection); an apply that is writing
/// winds down and ends by itself, reporting `interrupted`, unless it takes longer than
/// `WIND_DOWN` or a second signal comes.
async fn watch_signals() {
    let signal = signals::next().await;
    signals::record(signal);
    if !signals::is_writing() {
        logging::say(&format!("\nInterrupted by {}.", signal.name()));
        std::process::exit(i32::from(signal.exit_code()));
    }
    let code = tokio::select! {
        again = signals::next() => again.exit_code(),
        () = tokio::time::sleep(WIND_DOWN) => signal.exit_code(),
    };
    logging::say(&format!("\nStopped by {}.", signal.name()));
    std::process::exit(i32::from(code));
}

async fn dispatch(command: Command, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    match command {
        Command::Validate(args) => commands::validate::run(&args.file, console),
        Command::Plan(args) => commands::plan::run(&args, console).await,
        Command::Apply(args) => commands::apply::run(&args, console).await,
        Command::Explain(args) => commands::explain::run(&args.manifest.file, &args.user, console).await,
        Command::Show(args) => commands::show::run(&args, console),
        Command::Completions(args) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut command, "scimform", console.out);
            Ok(ExitStatus::Success)
        }
        Command::Man => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command).render(console.out)?;
            Ok(ExitStatus::Success)
        }
        Command::Init(args) => commands::init::run(&args, console),
        Command::State(command) => commands::state::run(&command, console).await,
        Command::Schema => commands::schema::run(console),
        Command::Demo(args) if args.serve => commands::demo::serve(console).await,
        Command::Demo(_) => commands::demo::run(console).await,
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::wants_color;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(wants_color(true, None));
        assert!(wants_color(true, Some(OsStr::new(""))));
        assert!(!wants_color(true, Some(OsStr::new("1"))));
        assert!(!wants_color(false, None));
    }
}
