//! The pipeline a run goes through, whatever the command: the manifest's sources and target
//! opened, the sources read into the desired state, the target read (or taken from the state),
//! the plan made and, for `apply`, sent, with what the service answered folded into what the
//! state remembers. `commands` decide what to show and whether to apply.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, bail};

use crate::apply::fold::{answered_members, unlanded_memberships, update_after_apply, written_ids};
use crate::apply::replan::replan_stale;
use crate::apply::{ApplyReport, Subject, execute_with_progress};
use crate::desired::{self, DesiredState};
use crate::manifest::Manifest;
use crate::plan::delta::Baseline;
use crate::plan::focus::Selector;
use crate::plan::{Clock, Plan, Rest};
use crate::progress::Progress;
use crate::service::{CurrentState, ScimClient, TargetReader};
use crate::settings::RunSettings;
use crate::source::AnySource;
use crate::state::{RunState, Settled, SourceReads, TargetUpdate};

mod delta;
mod settled;
mod sources;
mod target;

pub use delta::Replanned;
pub use sources::{expand_group_patterns, read_desired, sources_for};
use target::read_current;

/// The SCIM client for a manifest's target.
pub fn client_for(manifest: &Manifest) -> anyhow::Result<ScimClient> {
    let managed = manifest.users.managed_paths();
    Ok(ScimClient::new(&manifest.target, &managed)?.keep_only(&managed).matching(&manifest.users.match_paths))
}

/// Reads the sources and the target and computes the plan (a run without state: the sources
/// can be read again).
pub async fn read_and_plan(
    manifest: &Manifest,
    sources: &mut BTreeMap<String, AnySource>,
    target: &ScimClient,
    progress: Progress,
) -> anyhow::Result<Plan> {
    let manifest = &*expand_group_patterns(manifest, sources, progress).await?;
    // The sources and the target are read at the same time: a run costs its slower read.
    let (desired, (current, _)) = tokio::try_join!(
        read_desired_checked(manifest, sources, progress, None),
        read_current(manifest, target, progress, None, None)
    )?;
    Ok(crate::plan::plan(&manifest.users, &desired, &current))
}

/// A plan, the target state it was made against and how the sources were read.
pub struct Planned {
    pub plan: Plan,
    /// Empty when the last run's plan stood (`TargetRead::Settled`). Once `apply` ran, without
    /// the values the plan's creates carry (`plan::lend`).
    pub desired: DesiredState,
    /// Empty when the last run's plan stood.
    pub current: CurrentState,
    /// How the target state was had: listed, or remembered by the state and checked.
    pub target_read: TargetRead,
    pub sources: SourceReads,
    /// The users the desired state holds.
    pub users: usize,
    /// What the state remembers if this plan is the run's last word (it changes nothing).
    pub settled: Option<Settled>,
    /// Set when only the users whose inputs changed were planned again (`plan::delta`):
    /// `current` then holds only the target users loaded for them.
    pub replanned: Option<Box<Replanned>>,
}

impl Planned {
    /// What the state is left with of the target when nothing was written.
    pub fn target_unwritten(&mut self) -> TargetUpdate {
        let current = std::mem::take(&mut self.current);
        if let Some(replanned) = &self.replanned {
            // Only the users loaded are at hand: those read again are saved, the others stay.
            return TargetUpdate::Written { current, written: replanned.refreshed.clone() };
        }
        match self.target_read {
            TargetRead::Settled { .. } => TargetUpdate::Kept,
            TargetRead::Remembered { .. } => TargetUpdate::Unchanged(current),
            TargetRead::Listed { .. } | TargetRead::Refreshed { .. } => TargetUpdate::Replace(current),
        }
    }
}

impl Planned {
    /// For a run with a state: how each source was read, and whether the target was.
    pub fn describe_reads(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.sources.describe(out)?;
        match &self.target_read {
            TargetRead::Listed { why: None } => {}
            TargetRead::Listed { why: Some(why) } => writeln!(out, "Read the target in full: {why}.")?,
            TargetRead::Remembered { users, since: None } => writeln!(
                out,
                "Planned against the state (the target holds the {users} user(s) it remembers); edits made in the target are seen by `--refresh`."
            )?,
            TargetRead::Remembered { users, since: Some(since) } => writeln!(
                out,
                "Planned against the state (the target holds the {users} user(s) it remembers, none modified since {since}); `--refresh` reads the target in full."
            )?,
            TargetRead::Refreshed { modified, since } => writeln!(
                out,
                "Planned against the state, with the {modified} user(s) modified in the target since {since} read again; `--refresh` reads the target in full."
            )?,
            TargetRead::Settled { users, since } => writeln!(
                out,
                "Nothing changed since the last run, whose plan stands: every source is as it read it, and the target holds the {users} user(s) the state remembers{}; `--refresh` reads everything again.",
                since.as_ref().map(|s| format!(", none modified since {s}")).unwrap_or_default()
            )?,
        }
        if let Some(replanned) = &self.replanned {
            let again = &replanned.replanning;
            let planned = again.keys.iter().filter(|k| self.desired.users.contains_key(*k)).count();
            writeln!(
                out,
                "Planned again only the {planned} user(s) whose inputs changed or who could be touched by a change ({} target user(s) read from the state); the other {} stand as the last run planned them.",
                again.ids.len(),
                self.users - planned
            )?;
        }
        Ok(())
    }
}

/// How a run had the target's users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetRead {
    /// Listed in full; `why` when the state remembered them but could not be trusted.
    Listed { why: Option<String> },
    /// As the state remembers them: the service holds as many (`count=0`), and none was
    /// modified since `since` (when the service filters on `meta.lastModified`).
    Remembered { users: usize, since: Option<String> },
    /// As the state remembers them, with the users modified since `since` read again.
    Refreshed { modified: usize, since: String },
    /// Not even loaded: every source and the target were as the last run found them, and its
    /// plan stands (`state::Settled`).
    Settled { users: usize, since: Option<String> },
}

impl TargetRead {
    /// Whether what the state remembers of the target is still what it holds (nothing to save).
    pub fn unchanged(&self) -> bool {
        matches!(self, TargetRead::Remembered { .. } | TargetRead::Settled { .. })
    }
}

/// The run of `plan` and `apply -f`: the manifest's sources opened with what the state left,
/// read, the plan made (against the remembered target where it serves) and limited to the
/// settings' `--target`s.
pub async fn plan_run(
    manifest: &Manifest,
    settings: &RunSettings,
    target: &ScimClient,
    mut state: Option<&mut RunState>,
    progress: Progress,
) -> anyhow::Result<Planned> {
    if let Some(days) = manifest.users.deprovision.delete_after_days
        && settings.state.location.is_none()
    {
        bail!(
            "`users.deprovision.delete_after_days: {days}` needs a state, which remembers when scimform disabled each user; run without `--no-state`"
        );
    }
    let mut checked = None;
    if let Some(state) = state.as_deref_mut() {
        match settled::standing_plan(manifest, target, state).await? {
            settled::Standing::Stands(mut planned) => {
                let rails = crate::plan::rails::Rails::of(&manifest.users, &manifest.groups);
                planned.plan = crate::plan::focus::focus(std::mem::take(&mut planned.plan), &settings.targets, &rails);
                return Ok(*planned);
            }
            settled::Standing::Falls(check) => checked = check,
        }
    }
    // A settled plan whose sources changed: only the users that changed are planned again, so
    // the target's users stay in the store until they are needed.
    let baseline = match state.as_deref_mut() {
        Some(state) => state.baseline(manifest).await?,
        None => None,
    };
    if let Some(state) = state.as_deref_mut() {
        state.load_sparing(baseline.is_some()).await?;
    }
    let mut sources = sources_for(manifest, state.as_deref_mut())?;
    let explicit = manifest.groups.len();
    let manifest = &*expand_group_patterns(manifest, &mut sources, progress).await?;
    // Which pairings the patterns made, against the last run's: one no longer made is said.
    let made: BTreeMap<String, String> =
        manifest.groups[explicit..].iter().map(|p| (p.name.clone(), p.to.to_string())).collect();
    let mut gone_pairings = Vec::new();
    if let Some(state) = state.as_deref_mut() {
        for (name, to) in state.last_pattern_pairings().iter().filter(|(name, _)| !made.contains_key(*name)) {
            gone_pairings.push(format!(
                "pairing `{name}` no longer matches a source group: its target group ({to}) is left as it is, never deleted"
            ));
        }
        state.set_pattern_pairings(made);
    }
    let mut planned = match (baseline, state) {
        (Some(baseline), Some(state)) => {
            let read = delta::Read { sources, now: settings.now, made: checked };
            delta::read_and_plan_changed(manifest, read, target, progress, state, baseline).await?
        }
        (_, state) => {
            read_and_plan_cached(manifest, sources, target, progress, state, Some(settings.now), checked).await?
        }
    };
    planned.plan.warnings.extend(gone_pairings);
    let targets = by_primary_key(manifest, &planned.desired, &settings.targets);
    let rails = crate::plan::rails::Rails::of(&manifest.users, &manifest.groups);
    planned.plan = crate::plan::focus::focus(std::mem::take(&mut planned.plan), &targets, &rails);
    Ok(planned)
}

/// `--target user:KEY` names a user by any of its match keys; the plan knows it by the first.
fn by_primary_key(manifest: &Manifest, desired: &DesiredState, targets: &[Selector]) -> Vec<Selector> {
    let other_keys: Vec<&crate::scim::ScimPath> = manifest.users.match_paths.iter().skip(1).collect();
    targets
        .iter()
        .map(|target| match target {
            Selector::User(key) if !desired.users.contains_key(key) => desired
                .users
                .values()
                .find(|user| {
                    other_keys.iter().any(|path| {
                        user.attributes.get(path).and_then(serde_json::Value::as_str).map(desired::match_key)
                            == Some(key.clone())
                    })
                })
                .map_or_else(|| target.clone(), |user| Selector::User(user.key.clone())),
            other => other.clone(),
        })
        .collect()
}

/// Like `read_and_plan`, but with the state of a `--state` run: the sources (opened by
/// `sources_for` with the state) read on from where the last run left them and finished, and
/// the plan made against the remembered target instead of listing it, when the state holds
/// every paired group (`made`: the check of it a run made already).
async fn read_and_plan_cached(
    manifest: &Manifest,
    mut sources: BTreeMap<String, AnySource>,
    target: &ScimClient,
    progress: Progress,
    state: Option<&mut RunState>,
    now: Option<jiff::Timestamp>,
    made: Option<target::CheckMade>,
) -> anyhow::Result<Planned> {
    let clock = state.as_deref().map_or_else(|| Clock { now, ..Clock::default() }, |s| s.clock(now));
    let forgotten = state.as_deref().map(|s| s.forgotten().clone()).unwrap_or_default();
    let keeps_state = state.is_some();
    // The sources and the target are read at the same time: a run costs its slower read.
    let (mut desired, (current, target_read)) = tokio::try_join!(
        read_desired_checked(manifest, &mut sources, progress, now),
        read_current(manifest, target, progress, state, made)
    )?;
    desired.forgotten = forgotten;
    let sources = SourceReads::collect(sources);
    Ok(plan_in_full(manifest, desired, current, target_read, sources, &clock, keeps_state))
}

/// The plan made over every user, and what the state keeps of it when it changes nothing (with
/// the baseline that lets the next run plan again only the users that change).
fn plan_in_full(
    manifest: &Manifest,
    desired: DesiredState,
    current: CurrentState,
    target_read: TargetRead,
    sources: SourceReads,
    clock: &Clock,
    keeps_state: bool,
) -> Planned {
    let parts = crate::plan::plan_parts(&manifest.users, &desired, &desired.groups, &current, clock, &Rest::default());
    let users = desired.users.len();
    let fingerprints = sources.fingerprints.as_ref().filter(|_| keeps_state);
    let settled = Settled::of(manifest, &parts.plan, fingerprints, current.users.len(), users, &clock.disabled_at)
        .map(|s| s.with_baseline(Baseline::of(&manifest.users, &desired, &current, &parts)));
    let plan = parts.plan;
    Planned { plan, desired, current, target_read, sources, users, settled, replanned: None }
}

/// The desired state, or an error listing its problems: nothing is planned on a partial one.
async fn read_desired_checked(
    manifest: &Manifest,
    sources: &mut BTreeMap<String, AnySource>,
    progress: Progress,
    now: Option<jiff::Timestamp>,
) -> anyhow::Result<DesiredState> {
    let (_, desired) = read_desired(manifest, sources, progress, now).await?;
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
    Ok(desired)
}

/// `--refresh-only`: the target read in full, and how it drifted from the state.
pub async fn read_drift(
    manifest: &Manifest,
    target: &ScimClient,
    remembered: Option<&CurrentState>,
    progress: Progress,
) -> anyhow::Result<(Vec<crate::state::Drift>, CurrentState)> {
    let Some(remembered) = remembered else {
        bail!(
            "the state remembers no target for this manifest, so there is nothing to compare with; run `apply` first"
        );
    };
    let refs: Vec<_> = manifest.groups.iter().map(|p| p.to.clone()).collect();
    let counter = progress.counter("Reading users from the target");
    target.report_progress_to(counter.clone());
    let now = target.current_state(&refs, &refs).await.context("cannot read the current state of the target")?;
    counter.finish_and_clear();
    // Compared over the managed attributes only; the state trims what it keeps.
    Ok((crate::state::drift(remembered, &now, &manifest.users.managed_paths()), now))
}

/// What sending a plan left.
pub struct Applied {
    /// Every request sent and what the service answered; a write refused as stale stays,
    /// marked superseded, followed by what re-planning it sent.
    pub report: ApplyReport,
    /// Memberships the service did not take as planned.
    pub warnings: Vec<String>,
    /// The plan made again for what changed in the target since it was read, and how many
    /// resources that was.
    pub replanned: Option<(usize, Plan)>,
    /// What the state remembers of the target now.
    pub target: TargetUpdate,
}

/// Sends `plan` (made from `desired` against `current`), reads back groups whose answer did not
/// say their members, re-plans what was refused as stale, and works out what the state should
/// remember of the target: exactly what was written, or nothing (a failed write, a reference set
/// after a create, a re-planned write), so that the next run reads it in full.
pub async fn apply(
    manifest: &Manifest,
    plan: &Plan,
    planned: &mut Planned,
    client: &ScimClient,
    progress: Progress,
) -> Applied {
    // The plan holds each created user's values until the apply ends; the desired state lends
    // them rather than keep a second copy (100,000 users' on a first run).
    crate::plan::lend::lend(&mut planned.desired, plan);
    let (desired, current) = (&planned.desired, std::mem::take(&mut planned.current));
    let mut report = send(plan, client, manifest.target.concurrency, progress).await;
    if crate::signals::interrupted().is_some() {
        // Stopped: what landed is in the report; the next run reads the target in full.
        let warnings = Vec::new();
        return Applied { report, warnings, replanned: None, target: TargetUpdate::Forget };
    }
    read_back_groups(plan, &mut report, client).await;
    let warnings = unlanded_memberships(&current, plan, &report);
    if report.outcomes.iter().any(crate::apply::Outcome::is_stale) {
        // A write refused as stale (edited since read, or the retry of a write whose answer
        // was lost): read again and planned again, then one account of it all.
        let bar = progress.bar(0, "Applying again");
        let desired = crate::plan::lend::restored(desired, plan);
        // Planned again as it was planned: over every user, or over those planned again.
        let plan_again = |current: &CurrentState| match &planned.replanned {
            Some(replanned) => replanned.plan_again(manifest, &desired, current),
            None => crate::plan::plan(&manifest.users, &desired, current),
        };
        let (report, again) = replan_stale(manifest, &plan_again, &current, plan, report, client, &bar).await;
        bar.finish_and_clear();
        let read_again: std::collections::BTreeSet<&Subject> =
            report.outcomes.iter().filter(|o| o.superseded).map(|o| &o.subject).collect();
        let replanned = Some((read_again.len(), again));
        // What the retry left is not followed in detail: the next run reads the target in full.
        return Applied { report, warnings, replanned, target: TargetUpdate::Forget };
    }
    let target = match update_after_apply(current, plan, &mut report, &manifest.users.managed_paths()) {
        // Planned again for some users, against those loaded: the written and those read again
        // change, the others stay as saved.
        Some(current) if planned.replanned.is_some() => {
            let mut written = written_ids(plan, &report);
            written.extend(planned.replanned.iter().flat_map(|r| r.refreshed.iter().cloned()));
            TargetUpdate::Written { current, written }
        }
        // Planned against the users as the state keeps them: only those written change.
        Some(current) if matches!(planned.target_read, TargetRead::Remembered { .. }) => {
            TargetUpdate::Written { current, written: written_ids(plan, &report) }
        }
        Some(current) => TargetUpdate::Replace(current),
        None => TargetUpdate::Forget,
    };
    Applied { report, warnings, replanned: None, target }
}

/// Sends a plan's requests with a progress bar. From here a signal lets the writes in flight
/// finish and the run record them.
pub async fn send(plan: &Plan, client: &ScimClient, concurrency: usize, progress: Progress) -> ApplyReport {
    crate::signals::writing(true);
    let bar = progress.bar(plan.users.len() + plan.groups.len(), "Applying");
    let report = execute_with_progress(plan, client, concurrency, &bar).await;
    bar.finish_and_clear();
    report
}

/// A group write answered without the group (204, or a body without `members`) is followed by
/// a read of the group, so the state records the members the service holds, not those planned.
async fn read_back_groups(plan: &Plan, report: &mut ApplyReport, client: &ScimClient) {
    for change in &plan.groups {
        let subject = Subject::Group(change.name.clone());
        let Some(outcome) = report.outcomes.iter_mut().rev().find(|o| o.subject == subject && o.result.is_ok()) else {
            continue;
        };
        let Some(response) = outcome.response.as_mut() else { continue };
        if answered_members(response).is_some() {
            continue;
        }
        let id = if change.create {
            response.body.as_ref().and_then(crate::scim::resource::id_of).map(str::to_owned)
        } else {
            Some(change.target_id.clone())
        };
        let Some(id) = id else { continue };
        // A read that fails leaves the answer as it was: the state then follows what was sent.
        if let Ok(Some(group)) = client.fetch(&format!("/Groups/{id}")).await {
            response.body = Some(group);
        }
    }
}
