//! Command-line interface: clap types only. The doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::plan::focus::Selector;

/// Declarative identity provisioning: plan and apply SCIM 2.0 changes from your directories.
#[derive(Debug, Parser)]
#[command(
    name = "scimform",
    version,
    long_version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SCIMFORM_COMMIT"), " ", env!("SCIMFORM_BUILD_DATE"), ")"),
    about,
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log errors only, and show no progress bars (`RUST_LOG`, tracing's filter syntax, sets the
    /// log levels in full when given)
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Colour the plan: on a terminal unless `NO_COLOR` is set (auto), or always, or never
    #[arg(long, value_enum, global = true, default_value_t)]
    pub color: ColorChoice,
    /// Stderr as text for a person, or as JSON lines for a log shipper (every line one object
    /// with timestamp, level and message; stdout keeps the plan)
    #[arg(long, value_enum, global = true, default_value_t, env = "SCIMFORM_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// How stderr is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// When the plan is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a manifest (schema, references, paths, templates, variables); no network
    #[command(after_help = "Example:\n  scimform validate -f identity/ad-to-genesys.yaml")]
    Validate(ManifestArgs),
    /// Read the sources and the target and show what would change
    #[command(
        after_help = "Examples:\n  scimform plan -f scimform.yaml\n  scimform plan -f scimform.yaml --out plan.json --format markdown > plan.md"
    )]
    Plan(PlanArgs),
    /// Apply a saved plan, or plan and apply after confirmation
    #[command(
        after_help = "Examples:\n  scimform apply plan.json\n  scimform apply -f scimform.yaml --auto-approve --report report.json"
    )]
    Apply(ApplyArgs),
    /// Show how one user is built: source record, desired state, target state, operations
    #[command(after_help = "Example:\n  scimform explain -f scimform.yaml ann.lee@corp.example")]
    Explain(ExplainArgs),
    /// Show a saved plan without applying it, exactly as `plan` printed it
    #[command(after_help = "Example:\n  scimform show plan.json --format markdown")]
    Show(ShowArgs),
    /// Print a shell completion script: `scimform completions bash > /etc/bash_completion.d/scimform`
    Completions(CompletionsArgs),
    /// Print the man page (roff): `scimform man > /usr/local/share/man/man1/scimform.1`
    Man,
    /// Write a commented starter manifest: `scimform init --source graph --target genesys`
    Init(InitArgs),
    /// What the state remembers of the target for a manifest: `scimform state list -f scimform.yaml`
    #[command(subcommand)]
    State(StateCommand),
    /// Print the manifest's JSON Schema
    #[command(after_help = "Example:\n  scimform schema > schema/manifest.schema.json")]
    Schema,
    /// Run plan -> apply -> apply against an embedded SCIM server, with example data
    #[command(after_help = "Examples:\n  scimform demo\n  scimform demo --serve")]
    Demo(DemoArgs),
}

/// `-v`, on the commands that talk to services (where it shows something).
#[derive(Debug, Clone, Copy, Args)]
pub struct Verbosity {
    /// Log each request line and status (and retries, throttling) to stderr; never bodies or
    /// credentials
    #[arg(short, long)]
    pub verbose: bool,
}

impl Command {
    /// Whether `-v` was given (only commands that talk to services take it).
    pub fn verbose(&self) -> bool {
        match self {
            Command::Plan(a) => a.log.verbose,
            Command::Apply(a) => a.log.verbose,
            Command::Explain(a) => a.log.verbose,
            Command::Demo(a) => a.log.verbose,
            _ => false,
        }
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub log: Verbosity,
    /// Keep the embedded SCIM server running (seeded with the demo's users) and print its URL
    /// and token, to point a manifest of your own at; Ctrl-C stops it
    #[arg(long)]
    pub serve: bool,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The manifest file
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
}

/// How `plan` shows the plan on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Terraform-style text, coloured on a terminal unless NO_COLOR is set
    #[default]
    Text,
    /// For a pull-request comment: summary table and one diff block per resource
    Markdown,
    /// The versioned plan document (the same as `--out` writes)
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    #[command(flatten)]
    pub log: Verbosity,
    /// Exit 0 when there are no changes, 2 when there are changes, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also save the plan to FILE, for `scimform apply FILE` after review
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// How to show the plan on stdout
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Also list the target users this manifest does not manage (no desired user matches them
    /// and they carry no ownership marker of ours); they are never touched
    #[arg(long)]
    pub show_unmanaged: bool,
    /// Limit the plan to one resource: `user:KEY` (its match value) or `group:NAME`; repeatable
    #[arg(long = "target", value_name = "RESOURCE")]
    pub targets: Vec<Selector>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// The state: what the last run left, so a run reads only what changed.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// Where the state lives [default: a SQLite file beside the manifest, `<manifest>.state`]:
    /// a file, or a PostgreSQL database (`postgres://…`) for runners that keep no files. It
    /// remembers the target and how far each source was read; later runs read only what changed
    /// in the sources and plan against the remembered target instead of listing every user
    /// (writes still carry each user's version as `If-Match`)
    #[arg(long = "state", value_name = "FILE|URL", env = "SCIMFORM_STATE", hide_env_values = true)]
    pub location: Option<String>,
    /// Keep no state: read the sources and the target in full, remember nothing (whatever
    /// `--state` or SCIMFORM_STATE say)
    #[arg(long, conflicts_with_all = ["refresh", "refresh_only"])]
    pub no_state: bool,
    /// Read the sources and the target in full even when the state remembers them (and
    /// remember them anew): a periodic full cycle catches edits made in the target
    #[arg(long)]
    pub refresh: bool,
    /// Read the target in full and report drift (edits made in the target since the last run)
    /// instead of planning; `apply --refresh-only` also makes the state remember it. Never
    /// writes to the target
    #[arg(long, conflicts_with = "refresh")]
    pub refresh_only: bool,
    /// How long to wait for the run lock (the lock file, or a PostgreSQL state's) when another
    /// run holds it, before giving up
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub lock_timeout: u64,
}

impl StateArgs {
    /// The state this run uses: `--state`, else the file beside the manifest; none with
    /// `--no-state`.
    pub fn location(&self, manifest: &std::path::Path) -> Option<String> {
        if self.no_state {
            return None;
        }
        Some(self.location.clone().unwrap_or_else(|| format!("{}.state", manifest.display())))
    }
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub log: Verbosity,
    /// A plan saved by `plan --out`: apply exactly it, or nothing if the target changed since
    #[arg(value_name = "PLAN_FILE", required_unless_present = "file")]
    pub plan_file: Option<PathBuf>,
    /// The manifest (default for a saved plan: the one it was made from)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Apply without asking for confirmation (for scheduled runs)
    #[arg(long)]
    pub auto_approve: bool,
    /// Accept a plan blocked by a safety rail, naming the limit the plan printed and the most
    /// it may do: `deprovision=40`, `attribute_changes.userName=6`, `removals.Support=4`;
    /// repeatable. N also caps a plan that is not blocked
    #[arg(long = "allow", value_name = "NAME=N", value_parser = parse_allow)]
    pub allow: Vec<(String, usize)>,
    /// The same as `--allow deprovision=N`
    #[arg(long, value_name = "N")]
    pub allow_deprovision: Option<usize>,
    /// The run lock [default: the manifest's path with `.lock` appended]
    #[arg(long, value_name = "PATH")]
    pub lock_file: Option<PathBuf>,
    /// Write a JSON report of every operation and its outcome to FILE
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the run's metrics to FILE in Prometheus text format (for node_exporter's textfile
    /// collector; written atomically): result, duration, operations, users managed, retries,
    /// throttled waits and the time of the last successful run
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Limit the plan to one resource: `user:KEY` or `group:NAME`; repeatable
    #[arg(long = "target", value_name = "RESOURCE", conflicts_with = "plan_file")]
    pub targets: Vec<Selector>,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A plan saved by `plan --out`
    #[arg(value_name = "PLAN_FILE")]
    pub plan_file: PathBuf,
    /// How to show it on stdout
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `scimform state …`: read what the state holds (it is never written here).
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// The users and groups the state remembers of the target, and how far each source was read
    #[command(after_help = "Example:\n  scimform state list -f scimform.yaml")]
    List(StateReadArgs),
    /// One remembered resource as JSON: `user:<userName>` or `group:<displayName>`
    #[command(after_help = "Example:\n  scimform state show -f scimform.yaml user:ann.lee@corp.example")]
    Show(StateShowArgs),
    /// Stop managing one user or group (`user:<userName>` or `group:<displayName>`), as
    /// `terraform state rm` does: from the next run on it is never written, disabled or adopted,
    /// and its memberships are left as they are; `--undo` manages it again
    #[command(
        after_help = "Examples:\n  scimform state forget -f scimform.yaml user:ann.lee@corp.example\n  scimform state forget -f scimform.yaml --undo user:ann.lee@corp.example"
    )]
    Forget(StateForgetArgs),
}

#[derive(Debug, Args)]
pub struct StateForgetArgs {
    #[command(flatten)]
    pub read: StateReadArgs,
    /// Manage it again (it is planned as any other from the next run)
    #[arg(long)]
    pub undo: bool,
    /// `user:<userName>` or `group:<displayName>`
    #[arg(value_name = "RESOURCE")]
    pub resource: Selector,
}

#[derive(Debug, Args)]
pub struct StateReadArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Args)]
pub struct StateShowArgs {
    #[command(flatten)]
    pub read: StateReadArgs,
    /// `user:<userName>` or `group:<displayName>`
    #[arg(value_name = "RESOURCE")]
    pub resource: Selector,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where people come from
    #[arg(long, value_enum)]
    pub source: InitSource,
    /// Where they go
    #[arg(long, value_enum)]
    pub target: InitTarget,
    /// The manifest to write (never overwritten)
    #[arg(short = 'f', long = "file", value_name = "FILE", default_value = "scimform.yaml")]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitSource {
    /// Active Directory over LDAP
    Ldap,
    /// Microsoft Entra ID over Microsoft Graph
    Graph,
    /// A CSV, YAML or JSON export
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitTarget {
    /// Genesys Cloud, with the mappings Entra's Genesys Cloud app uses by default
    Genesys,
    /// Any SCIM 2.0 service
    Generic,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    #[command(flatten)]
    pub log: Verbosity,
    /// The user's match value (e.g. its userName)
    #[arg(value_name = "USER_KEY")]
    pub user: String,
}

/// `NAME=N` of `--allow`.
fn parse_allow(text: &str) -> Result<(String, usize), String> {
    let (name, n) = text.split_once('=').ok_or_else(|| format!("`{text}` is not NAME=N (e.g. `deprovision=40`)"))?;
    let n = n.trim().parse().map_err(|_| format!("`{n}` in `{text}` is not a count"))?;
    Ok((name.trim().to_owned(), n))
}
