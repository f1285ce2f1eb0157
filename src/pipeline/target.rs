//! The target's side of a run: listed in full, or taken from the state and checked against the
//! service (a `count=0` per listing pass; the users modified since the last run, where the
//! service filters on `meta.lastModified`).

use std::collections::BTreeMap;

use anyhow::Context;

use super::TargetRead;
use crate::current::CurrentUser;
use crate::manifest::Manifest;
use crate::progress::Progress;
use crate::scim::ScimPath;
use crate::service::{CurrentState, ScimClient, TargetError, TargetReader};
use crate::state::{RunState, TargetWatch};

/// The target as it is: remembered by the state when it holds every paired group (taken, not
/// copied: 100,000 users are held once) and the service still holds as many users (one
/// `count=0` request a listing pass), with the users modified since the last run read again
/// where the service filters on `meta.lastModified`; else listed.
pub(super) async fn read_current(
    manifest: &Manifest,
    target: &ScimClient,
    progress: Progress,
    mut state: Option<&mut RunState>,
    made: Option<CheckMade>,
) -> anyhow::Result<(CurrentState, TargetRead)> {
    let usable = |t: &CurrentState| holds_paired_groups(manifest, t);
    let mut why = None;
    if let Some(state) = state.as_deref_mut()
        && let Some(remembered) = state.take_target_if(usable)
    {
        let managed = manifest.users.managed_paths();
        let mut watch = state.watch().clone();
        let checked = check_remembered(target, remembered, made, &mut watch, &managed)
            .await
            .context("cannot read the current state of the target")?;
        state.set_watch(watch);
        match checked {
            Ok(found) => return Ok(found),
            Err(reason) => why = Some(reason),
        }
    }
    list(manifest, target, progress, state, why).await
}

/// The target listed in full (`why`: the state's target could not be trusted).
pub(super) async fn list(
    manifest: &Manifest,
    target: &ScimClient,
    progress: Progress,
    state: Option<&mut RunState>,
    why: Option<String>,
) -> anyhow::Result<(CurrentState, TargetRead)> {
    let refs: Vec<_> = manifest.groups.iter().map(|p| p.to.clone()).collect();
    let creatable: Vec<_> = manifest.groups.iter().filter(|p| p.create).map(|p| p.to.clone()).collect();
    let counter = progress.counter("Reading users from the target");
    target.report_progress_to(counter.clone());
    let current =
        target.current_state(&refs, &creatable).await.context("cannot read the current state of the target")?;
    counter.finish_and_clear();
    if let Some(state) = state {
        let mut watch = state.watch().clone();
        watch.saw(target.newest_modified());
        state.set_watch(watch);
    }
    Ok((current, TargetRead::Listed { why }))
}

/// Whether the remembered target holds every group the manifest pairs (or may create).
pub(super) fn holds_paired_groups(manifest: &Manifest, remembered: &CurrentState) -> bool {
    let creatable =
        |to: &crate::manifest::model::TargetGroupRef| manifest.groups.iter().any(|p| p.create && p.to == *to);
    manifest.groups.iter().all(|p| remembered.groups.contains_key(&p.to) || creatable(&p.to))
}

/// How far before the newest `meta.lastModified` read the next run asks from: a write the
/// service dates a little before another it committed earlier is still seen.
const MODIFIED_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_mins(5);

/// What the service says of the users the state remembers.
pub(super) enum TargetCheck {
    /// It holds another number of users: some were added or deleted behind the state's back.
    Recounted(String),
    /// As many users; those modified since `since` (trimmed to what the state keeps), where the
    /// service filters on `meta.lastModified` (`since` is `None` where it does not).
    Counted { holds: usize, modified: Vec<CurrentUser>, since: Option<String> },
}

/// A check of the target a run made already (`settled::standing_plan`'s, which found the last
/// plan no longer stands), against `against` remembered users: the plan made next takes it
/// rather than ask the service again.
pub(super) struct CheckMade {
    pub against: usize,
    pub check: TargetCheck,
}

/// The check made already when it was made against as many users, else `check_target`.
pub(super) async fn check_target_once(
    target: &ScimClient,
    remembered: usize,
    made: Option<CheckMade>,
    watch: &mut TargetWatch,
    managed: &[ScimPath],
) -> Result<TargetCheck, TargetError> {
    match made {
        Some(made) if made.against == remembered => Ok(made.check),
        _ => check_target(target, remembered, watch, managed).await,
    }
}

/// Asks the service how many users it holds and, where it filters on `meta.lastModified`,
/// which were modified since the newest modification the state knows of (less a margin);
/// `watch` learns whether it filters and the newest modification read.
pub(super) async fn check_target(
    target: &ScimClient,
    remembered: usize,
    watch: &mut TargetWatch,
    managed: &[ScimPath],
) -> Result<TargetCheck, TargetError> {
    let holds = target.user_count().await?;
    if holds != remembered {
        return Ok(TargetCheck::Recounted(format!(
            "it holds {holds} user(s) where the state remembers {remembered}: some were added or deleted behind its back"
        )));
    }
    let newest = watch.newest();
    let (Some(newest), true) = (newest, watch.filters_modified != Some(false)) else {
        return Ok(TargetCheck::Counted { holds, modified: Vec::new(), since: None });
    };
    let since = newest.checked_sub(MODIFIED_MARGIN).unwrap_or(newest).to_string();
    let Some(modified) = target.users_modified_after(&since).await? else {
        watch.filters_modified = Some(false);
        return Ok(TargetCheck::Counted { holds, modified: Vec::new(), since: None });
    };
    watch.filters_modified = Some(true);
    watch.saw(target.newest_modified());
    let modified = modified.iter().map(|user| user.trimmed(managed)).collect();
    Ok(TargetCheck::Counted { holds, modified, since: Some(since) })
}

/// What the state remembers of the target, checked against the service: `Err(why)` when it holds
/// another number of users (listed in full then), else the remembered users with those
/// modified since the last run read again.
async fn check_remembered(
    target: &ScimClient,
    remembered: CurrentState,
    made: Option<CheckMade>,
    watch: &mut TargetWatch,
    managed: &[ScimPath],
) -> Result<Result<(CurrentState, TargetRead), String>, TargetError> {
    match check_target_once(target, remembered.users.len(), made, watch, managed).await? {
        TargetCheck::Recounted(why) => Ok(Err(why)),
        TargetCheck::Counted { holds, modified, since } => Ok(Ok(with_modified(remembered, holds, modified, since))),
    }
}

/// The remembered target with the users `modified` since `since` as read again.
pub(super) fn with_modified(
    mut remembered: CurrentState,
    holds: usize,
    modified: Vec<CurrentUser>,
    since: Option<String>,
) -> (CurrentState, TargetRead) {
    let Some(since) = since else {
        return (remembered, TargetRead::Remembered { users: holds, since: None });
    };
    // Replaced as read; one the state did not know is added.
    let mut by_id: BTreeMap<String, usize> =
        remembered.users.iter().enumerate().map(|(i, u)| (u.id.clone(), i)).collect();
    let mut changed = 0;
    for user in modified {
        match by_id.get(&user.id) {
            Some(&i) if remembered.users[i] == user => {}
            Some(&i) => {
                remembered.users[i] = user;
                changed += 1;
            }
            None => {
                by_id.insert(user.id.clone(), remembered.users.len());
                remembered.users.push(user);
                changed += 1;
            }
        }
    }
    let read = if changed == 0 {
        TargetRead::Remembered { users: holds, since: Some(since) }
    } else {
        TargetRead::Refreshed { modified: changed, since }
    };
    (remembered, read)
}
