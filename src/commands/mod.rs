//! One module per subcommand: orchestration only. The pipeline shared by `plan`, `apply` and
//! `demo` lives here: sources -> desired state, target -> current state, then the planner.

pub mod apply;
pub mod demo;
pub mod explain;
pub mod plan;
pub mod schema;
pub mod validate;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, bail};

use crate::desired::{self, DesiredState};
use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::source::{AnySource, Source, SourceRecord};
use crate::state::{Snapshot, SqliteStore};
use crate::target::{CurrentState, ScimClient, TargetReader};

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
}

impl Console<'_> {
    /// Text for `out`: coloured when that is wanted.
    pub fn paint(&self, text: &str) -> String {
        if self.color { crate::plan::render::colorize(text) } else { text.to_owned() }
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

/// The adapters a manifest's sources describe.
pub fn sources_for(manifest: &Manifest) -> anyhow::Result<BTreeMap<String, AnySource>> {
    let wanted = manifest.source_attributes();
    let mut sources = BTreeMap::new();
    for (name, config) in &manifest.sources {
        sources.insert(name.clone(), AnySource::from_config(name, config, &wanted)?);
    }
    Ok(sources)
}

/// The SCIM client for a manifest's target.
pub fn client_for(manifest: &Manifest) -> anyhow::Result<ScimClient> {
    Ok(ScimClient::new(&manifest.target, &manifest.users.managed_paths())?)
}

/// Reads the sources and builds the desired state, problems included (see `DesiredState::errors`);
/// returns the user records too.
pub async fn read_desired(
    manifest: &Manifest,
    sources: &BTreeMap<String, AnySource>,
    progress: Progress,
) -> anyhow::Result<(Vec<SourceRecord>, DesiredState)> {
    let source = |name: &str| sources.get(name).with_context(|| format!("source `{name}` is not configured"));
    let spinner = progress.spinner(format!("Reading users from source `{}`", manifest.users.source));
    let records = source(&manifest.users.source)?.users().await?;
    spinner.finish_and_clear();
    let mut groups = Vec::new();
    for pairing in &manifest.groups {
        let spinner = progress.spinner(format!("Reading the source group of pairing `{}`", pairing.name));
        let group = source(&pairing.source)?
            .group(&pairing.from, pairing.nested)
            .await
            .with_context(|| format!("cannot read the source group of pairing `{}`", pairing.name))?;
        spinner.finish_and_clear();
        groups.push((pairing.clone(), group));
    }
    let mut set_groups = Vec::new();
    for set in &manifest.users.sets {
        let mut read = Vec::new();
        for rule in &set.groups {
            let spinner =
                progress.spinner(format!("Reading the source group for `{}` entry `{}`", set.path, rule.name));
            let group = source(&rule.source)?
                .group(&rule.group, rule.nested)
                .await
                .with_context(|| format!("cannot read the source group for `{}` entry `{}`", set.path, rule.name))?;
            spinner.finish_and_clear();
            read.push(group);
        }
        set_groups.push(read);
    }
    let desired = desired::build_with_sets(&manifest.users, &records, &groups, &set_groups);
    Ok((records, desired))
}

/// Reads the sources and the target and computes the plan.
pub async fn read_and_plan(
    manifest: &Manifest,
    sources: &BTreeMap<String, AnySource>,
    target: &ScimClient,
    progress: Progress,
) -> anyhow::Result<Plan> {
    Ok(read_and_plan_cached(manifest, sources, target, progress, None).await?.plan)
}

/// A plan and the target state it was made against.
pub struct Planned {
    pub plan: Plan,
    pub desired: DesiredState,
    pub current: CurrentState,
    /// The target state came from the state file, not from listing the target.
    pub from_cache: bool,
}

/// Like `read_and_plan`, but plans against `cache` (the target as the state file remembers it)
/// instead of listing the target, when the cache belongs to this manifest and holds every
/// paired group.
pub async fn read_and_plan_cached(
    manifest: &Manifest,
    sources: &BTreeMap<String, AnySource>,
    target: &ScimClient,
    progress: Progress,
    cache: Option<&Snapshot>,
) -> anyhow::Result<Planned> {
    let (_, desired) = read_desired(manifest, sources, progress).await?;
    if !desired.errors.is_empty() {
        let mut message = format!(
            "the desired state has {} problem(s); nothing was planned (`scimform explain` shows how a user's values are made)",
            desired.errors.len()
        );
        for error in &desired.errors {
            message.push_str("\n  - ");
            message.push_str(error);
        }
        bail!(message);
    }
    let refs: Vec<_> = manifest.groups.iter().map(|p| p.to.clone()).collect();
    let creatable: Vec<_> = manifest.groups.iter().filter(|p| p.create).map(|p| p.to.clone()).collect();
    let usable = cache.filter(|snapshot| {
        snapshot.manifest_sha256 == manifest.sha256
            && refs.iter().all(|r| snapshot.target.groups.contains_key(r) || creatable.contains(r))
    });
    let (current, from_cache) = if let Some(snapshot) = usable {
        (snapshot.target.clone(), true)
    } else {
        let counter = progress.counter("Reading users from the target");
        target.report_progress_to(counter.clone());
        let current =
            target.current_state(&refs, &creatable).await.context("cannot read the current state of the target")?;
        counter.finish_and_clear();
        (current, false)
    };
    let plan = crate::plan::plan(&manifest.users, &desired, &current);
    Ok(Planned { plan, desired, current, from_cache })
}

/// The state file a `--state` run uses, and what it remembers (unless `--refresh`).
pub fn open_state(path: Option<&Path>, refresh: bool) -> anyhow::Result<Option<(SqliteStore, Option<Snapshot>)>> {
    let Some(path) = path else { return Ok(None) };
    let store = SqliteStore::open(path)?;
    let snapshot = if refresh { None } else { store.load()? };
    Ok(Some((store, snapshot)))
}

/// After a full read, the state file remembers the target (managed attributes only).
pub fn remember(store: &mut SqliteStore, manifest: &Manifest, current: &CurrentState) -> anyhow::Result<()> {
    let target = crate::state::trim_state(current, &manifest.users.managed_paths());
    store.save(&Snapshot { manifest_sha256: manifest.sha256.clone(), target })?;
    Ok(())
}

/// `--refresh-only`: the target read in full, and how it drifted from the state file.
pub async fn read_drift(
    manifest: &Manifest,
    target: &ScimClient,
    snapshot: Option<&Snapshot>,
    progress: Progress,
) -> anyhow::Result<(Vec<crate::state::Drift>, CurrentState)> {
    let Some(snapshot) = snapshot.filter(|s| s.manifest_sha256 == manifest.sha256) else {
        bail!(
            "the state file remembers no target for this manifest, so there is nothing to compare with; run `apply --state` first"
        );
    };
    let refs: Vec<_> = manifest.groups.iter().map(|p| p.to.clone()).collect();
    let counter = progress.counter("Reading users from the target");
    target.report_progress_to(counter.clone());
    let now = target.current_state(&refs, &refs).await.context("cannot read the current state of the target")?;
    counter.finish_and_clear();
    let managed = manifest.users.managed_paths();
    let trimmed = crate::state::trim_state(&now, &managed);
    Ok((crate::state::drift(&snapshot.target, &trimmed, &managed), trimmed))
}
