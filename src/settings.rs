//! A run's settings: the command line and the environment resolved once, before the run starts
//! (ripgrep's and uv's two stages: clap's arguments first, then these). Nothing past the commands
//! sees a clap type: the lock, the state and the pipeline take these.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{ApplyArgs, PlanArgs, StateArgs};
use crate::plan::focus::Selector;

/// Where a run keeps its state and how it reads it.
#[derive(Debug, Clone)]
pub struct StateSettings {
    /// A file or a `postgres://` URL; `None` with `--no-state`.
    pub location: Option<String>,
    /// Named by `--state` or `SCIMFORM_STATE` (an error when it cannot be used), not the default
    /// beside the manifest (a warning).
    pub named: bool,
    /// How long to wait for another run's lock.
    pub lock_wait: Duration,
    /// `--refresh`: read the sources and the target in full, whatever the state remembers.
    pub refresh: bool,
    /// `--refresh-only`: report (and, for `apply`, remember) drift instead of planning.
    pub refresh_only: bool,
}

impl StateSettings {
    /// The state settings `--state`, `--no-state`, `--refresh(-only)` and `--lock-timeout` say.
    pub fn new(args: &StateArgs, manifest: &Path) -> Self {
        StateSettings {
            location: args.location(manifest),
            named: args.location.is_some(),
            lock_wait: Duration::from_secs(args.lock_timeout),
            refresh: args.refresh,
            refresh_only: args.refresh_only,
        }
    }

    /// The state is a PostgreSQL database (its advisory lock is then the run lock).
    pub fn is_postgres(&self) -> bool {
        self.location.as_deref().is_some_and(is_postgres_url)
    }
}

/// What a `plan` or `apply` run works with.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The manifest file.
    pub manifest: PathBuf,
    pub state: StateSettings,
    /// The run lock file (`apply`): `--lock-file`, else beside the manifest; `None` when the
    /// state is in PostgreSQL, whose advisory lock is the run lock then, across machines.
    pub lock_file: Option<PathBuf>,
    /// `--target`: the resources the plan is limited to.
    pub targets: Vec<Selector>,
    /// `apply --allow NAME=N` (and `--allow-deprovision N`, the same as `deprovision=N`): what
    /// a reviewed plan may do against each safety rail.
    pub allow: std::collections::BTreeMap<String, usize>,
    /// The run's clock (for `delete_after_days`): now, or `SCIMFORM_NOW` (an RFC 3339 time, for
    /// tests and rehearsals).
    pub now: jiff::Timestamp,
}

/// The run's clock: `SCIMFORM_NOW` when set, else the system's.
#[expect(clippy::disallowed_methods, reason = "the settings are an edge: they read the clock and the environment once")]
pub fn run_clock() -> anyhow::Result<jiff::Timestamp> {
    match std::env::var("SCIMFORM_NOW") {
        Ok(text) => text.parse().map_err(|e| {
            anyhow::anyhow!("SCIMFORM_NOW `{text}` is not an RFC 3339 time ({e}); give one like `2026-01-31T09:00:00Z`")
        }),
        Err(_) => Ok(jiff::Timestamp::now()),
    }
}

impl RunSettings {
    /// The settings of a run a program drives itself (a benchmark, a test): the state at
    /// `state` as if named by `--state`, nothing limited by `--target` or allowed by `--allow`.
    pub fn driven(manifest: PathBuf, state: Option<String>, now: jiff::Timestamp) -> Self {
        RunSettings {
            manifest,
            state: StateSettings {
                location: state,
                named: true,
                lock_wait: Duration::ZERO,
                refresh: false,
                refresh_only: false,
            },
            lock_file: None,
            targets: Vec::new(),
            allow: std::collections::BTreeMap::new(),
            now,
        }
    }

    pub fn for_plan(args: &PlanArgs) -> anyhow::Result<Self> {
        let manifest = args.manifest.file.clone();
        let state = StateSettings::new(&args.state, &manifest);
        let allow = std::collections::BTreeMap::new();
        Ok(RunSettings { state, lock_file: None, targets: args.targets.clone(), manifest, allow, now: run_clock()? })
    }

    /// For `apply`, with the manifest it runs (`-f`, or the one a saved plan was made from).
    pub fn for_apply(args: &ApplyArgs, manifest: &Path) -> anyhow::Result<Self> {
        let state = StateSettings::new(&args.state, manifest);
        let lock_file = (!state.is_postgres()).then(|| args.lock_file.clone().unwrap_or_else(|| lock_beside(manifest)));
        let mut allow: std::collections::BTreeMap<String, usize> = args.allow.iter().cloned().collect();
        if let Some(n) = args.allow_deprovision {
            allow.insert("deprovision".to_owned(), n);
        }
        Ok(RunSettings {
            allow,
            manifest: manifest.to_owned(),
            state,
            lock_file,
            targets: args.targets.clone(),
            now: run_clock()?,
        })
    }
}

/// The run lock file by default: the manifest's path plus `.lock`.
pub fn lock_beside(manifest: &Path) -> PathBuf {
    let mut path = manifest.as_os_str().to_owned();
    path.push(".lock");
    PathBuf::from(path)
}

/// Whether a `--state` location names a PostgreSQL database.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn apply_settings(args: &[&str]) -> RunSettings {
        let cli = Cli::try_parse_from([&["scimform", "apply"], args].concat()).unwrap();
        let Command::Apply(apply) = cli.command else { panic!("not apply") };
        RunSettings::for_apply(&apply, Path::new("conf/scimform.yaml")).unwrap()
    }

    #[test]
    fn the_lock_sits_beside_the_manifest_unless_the_state_is_in_postgres() {
        let settings = apply_settings(&["-f", "conf/scimform.yaml", "--lock-timeout", "30"]);
        assert_eq!(settings.lock_file, Some(PathBuf::from("conf/scimform.yaml.lock")));
        assert_eq!(settings.state.lock_wait, Duration::from_secs(30));
        let settings = apply_settings(&["-f", "m.yaml", "--lock-file", "/run/scim.lock", "--refresh"]);
        assert_eq!(settings.lock_file, Some(PathBuf::from("/run/scim.lock")));
        assert!(settings.state.refresh && !settings.state.refresh_only);
        let settings = apply_settings(&["-f", "m.yaml", "--state", "postgres://db/state"]);
        assert_eq!(settings.lock_file, None, "the database's advisory lock is the run lock");
        assert!(settings.state.named && settings.state.is_postgres());
        let settings = apply_settings(&["-f", "m.yaml", "--state", "runs/state.db"]);
        assert_eq!(settings.state.location.as_deref(), Some("runs/state.db"));
        assert!(settings.state.named && !settings.state.is_postgres());
        let settings = apply_settings(&["-f", "m.yaml", "--no-state"]);
        assert_eq!(settings.state.location, None);
    }

    #[test]
    fn postgres_locations_are_told_from_files() {
        assert!(is_postgres_url("postgresql://x") && is_postgres_url("postgres://x") && !is_postgres_url("state.db"));
    }
}
