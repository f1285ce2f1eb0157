//! Command-line interface: clap types only. The doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Declarative identity provisioning: plan and apply SCIM 2.0 changes from your directories.
#[derive(Debug, Parser)]
#[command(name = "scimform", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log each request line and status (and retries, throttling) to stderr; never bodies or
    /// credentials
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a manifest (schema, references, paths, templates, variables); no network
    Validate(ManifestArgs),
    /// Read the sources and the target and show what would change
    Plan(PlanArgs),
    /// Plan, then apply the changes after confirmation
    Apply(ApplyArgs),
    /// Print the manifest's JSON Schema
    Schema,
    /// Run plan -> apply -> apply against an embedded SCIM server, with example data
    Demo,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// The manifest file
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Exit 0 when there are no changes, 2 when there are changes, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub manifest: ManifestArgs,
    /// Apply without asking for confirmation (for scheduled runs)
    #[arg(long)]
    pub auto_approve: bool,
}
