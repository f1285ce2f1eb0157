//! A run whose last plan, made in full, changed nothing, and whose sources changed since: the
//! sources are read and the desired state built as always, the target checked as the state
//! remembers it (`count=0`, the users modified since), and only the users whose inputs changed
//! are planned again (`plan::delta`), against the target users loaded for them from the state.
//! The rest stand as the last plan left them. Falls back to planning in full when the state's
//! target cannot be trusted, or when so much changed that a full plan costs no more.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;

use super::target::{CheckMade, TargetCheck, check_target_once, holds_paired_groups, list, with_modified};
use super::{Planned, TargetRead, plan_in_full, read_desired_checked};
use crate::current::CurrentUser;
use crate::desired::DesiredState;
use crate::manifest::Manifest;
use crate::plan::delta::{Baseline, Closure, Replanning, plan_delta};
use crate::progress::Progress;
use crate::service::{CurrentState, ScimClient};
use crate::source::AnySource;
use crate::state::{RunState, Settled, SourceReads};

/// A plan made again for some users only: what it stands on, and which target users were
/// read again and differ from what the state kept (saved as written).
#[derive(Debug, Clone)]
pub struct Replanned {
    pub replanning: Replanning,
    pub refreshed: BTreeSet<String>,
    clock: crate::plan::Clock,
}

/// Past this share of the users planned again, a full plan costs about as much: make it.
const MOST: usize = 4;

/// What a run reads: its sources, at `now`, and the target, unless it was checked already.
pub(super) struct Read {
    pub sources: BTreeMap<String, AnySource>,
    pub now: jiff::Timestamp,
    pub made: Option<CheckMade>,
}

/// Reads the sources and checks the target, then plans again only the users whose inputs
/// changed since the plan `baseline` was made with (the state's settled plan), or in full.
pub(super) async fn read_and_plan_changed(
    manifest: &Manifest,
    read: Read,
    target: &ScimClient,
    progress: Progress,
    state: &mut RunState,
    baseline: Baseline,
) -> anyhow::Result<Planned> {
    let Read { mut sources, now, made } = read;
    let settled = state.settled().cloned().context("internal error: a baseline without a settled plan")?;
    let clock = state.clock(Some(now));
    let managed = manifest.users.managed_paths();
    let mut watch = state.watch().clone();
    let (mut desired, check) =
        tokio::try_join!(read_desired_checked(manifest, &mut sources, progress, Some(now)), async {
            check_target_once(target, settled.target_users, made, &mut watch, &managed)
                .await
                .context("cannot read the current state of the target")
        })?;
    state.set_watch(watch);
    desired.forgotten = state.forgotten().clone();
    let sources = SourceReads::collect(sources);
    let (holds, modified, since) = match check {
        TargetCheck::Recounted(why) => {
            let (current, read) = list(manifest, target, progress, Some(state), Some(why)).await?;
            return Ok(plan_in_full(manifest, desired, current, read, sources, &clock, true));
        }
        TargetCheck::Counted { holds, modified, since } => (holds, modified, since),
    };
    let Some(mut remembered) = state.spared_target().filter(|t| holds_paired_groups(manifest, t)) else {
        let (current, read) = list(manifest, target, progress, Some(state), None).await?;
        return Ok(plan_in_full(manifest, desired, current, read, sources, &clock, true));
    };
    let check = Check { holds, modified, since };
    if crate::plan::delta::scope_fingerprint(&desired) != baseline.scope {
        return in_full(manifest, desired, state, remembered, check, sources, &clock).await;
    }
    let Check { holds, modified, since } = check;
    // Modified since the margin began: those the state remembers as they are change nothing.
    let ids: Vec<String> = modified.iter().map(|u| u.id.clone()).collect();
    let before = state.remembered_users(&ids).await?;
    let fresh: BTreeMap<String, CurrentUser> = modified
        .into_iter()
        .filter(|now| before.binary_search_by(|b| b.id.cmp(&now.id)).ok().is_none_or(|i| before[i] != *now))
        .map(|u| (u.id.clone(), u))
        .collect();
    let mut closure = Closure::new(&baseline, &manifest.users, &desired, fresh.keys().cloned());
    let mut kept: Vec<CurrentUser> = Vec::new();
    loop {
        let wanted = closure.wanted();
        if wanted.is_empty() {
            break;
        }
        if closure.ids.len() * MOST > settled.target_users.max(1) || closure.is_everything() {
            let check = Check { holds, modified: fresh.into_values().collect(), since };
            return in_full(manifest, desired, state, remembered, check, sources, &clock).await;
        }
        let rows = state.remembered_users(&wanted).await?;
        closure.found(rows.iter().chain(wanted.iter().filter_map(|id| fresh.get(id))));
        kept.extend(rows);
    }
    if closure.keys.len() * MOST > desired.users.len() {
        let check = Check { holds, modified: fresh.into_values().collect(), since };
        return in_full(manifest, desired, state, remembered, check, sources, &clock).await;
    }
    let unaccounted: Vec<String> = closure.unaccounted_members(&remembered).into_iter().collect();
    let mut named = state.remembered_users(&unaccounted).await?;
    for row in &mut named {
        if let Some(now) = fresh.get(&row.id) {
            row.clone_from(now);
        }
    }
    let owned_before = crate::plan::diff::owned(&manifest.users, &kept);
    // The loaded users as they are now: read again where modified, else as the state kept them.
    let kept_ids: BTreeSet<String> = kept.iter().map(|u| u.id.clone()).collect();
    let refreshed: BTreeSet<String> = fresh.keys().cloned().collect();
    let added = fresh.keys().filter(|id| !kept_ids.contains(*id)).count();
    remembered.users = kept.into_iter().map(|u| fresh.get(&u.id).cloned().unwrap_or(u)).collect();
    remembered.users.extend(fresh.values().filter(|u| !kept_ids.contains(&u.id)).cloned());
    let Closure { keys, ids, .. } = closure;
    let baseline = Arc::new(baseline);
    let replanning = Replanning { baseline, last: settled.plan(), keys, ids, owned_before, named };
    let (plan, resolved) = plan_delta(&manifest.users, &desired, &replanning, &remembered, &clock);
    let users = desired.users.len();
    let fingerprints = sources.fingerprints.as_ref();
    let target_users = settled.target_users + added;
    let settled = Settled::of(manifest, &plan, fingerprints, target_users, users, &clock.disabled_at).map(|s| {
        let baseline =
            replanning.baseline.moved_on(&manifest.users, &desired, &replanning, &remembered.users, &resolved);
        s.with_baseline(Some(baseline))
    });
    let target_read = match since {
        Some(since) if !refreshed.is_empty() => TargetRead::Refreshed { modified: refreshed.len(), since },
        since => TargetRead::Remembered { users: holds, since },
    };
    Ok(Planned {
        plan,
        desired,
        current: remembered,
        target_read,
        sources,
        users,
        settled,
        replanned: Some(Box::new(Replanned { replanning, refreshed, clock })),
    })
}

/// What the service said of the users the state remembers (`TargetCheck::Counted`).
struct Check {
    holds: usize,
    modified: Vec<CurrentUser>,
    since: Option<String>,
}

/// The plan made in full against the target as the state keeps it (`remembered`: its groups,
/// its users read now), with the users modified since as read again.
async fn in_full(
    manifest: &Manifest,
    desired: DesiredState,
    state: &mut RunState,
    mut remembered: CurrentState,
    check: Check,
    sources: SourceReads,
    clock: &crate::plan::Clock,
) -> anyhow::Result<Planned> {
    remembered.users = state.all_remembered_users().await?;
    let (current, read) = with_modified(remembered, check.holds, check.modified, check.since);
    Ok(plan_in_full(manifest, desired, current, read, sources, clock, true))
}

impl Replanned {
    /// The plan for the users planned again against `current` (theirs, as read again after a
    /// stale write): what `replan_stale` plans.
    pub fn plan_again(&self, manifest: &Manifest, desired: &DesiredState, current: &CurrentState) -> crate::plan::Plan {
        plan_delta(&manifest.users, desired, &self.replanning, current, &self.clock).0
    }
}
