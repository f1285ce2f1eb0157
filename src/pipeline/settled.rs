//! A run whose inputs are as the last run found them: the last plan stands (the planner is
//! pure), so the run says so without reading the sources' users, building the desired state or
//! loading the target from the state. Its inputs: each source's fingerprint (a file's sha256,
//! AD's position), the target's user count and, where the service filters on
//! `meta.lastModified`, the users modified since, each as the state remembers it.

use anyhow::Context;

use super::target::{CheckMade, TargetCheck, check_target};
use super::{Planned, TargetRead};
use crate::desired::DesiredState;
use crate::manifest::Manifest;
use crate::service::{CurrentState, ScimClient};
use crate::source::{AnySource, Resume};
use crate::state::{RunState, SourceReads};

/// Whether the last run's plan stands.
pub(super) enum Standing {
    Stands(Box<Planned>),
    /// Plan again, with the check of the target made to find out, if one was.
    Falls(Option<CheckMade>),
}

/// The last run's plan, when it stands. The sources are asked for their fingerprints first (a
/// file hashed, one read of AD's root DSE), the target only when they are as they were: a run
/// whose sources changed sends the target no more than it would.
pub(super) async fn standing_plan(
    manifest: &Manifest,
    target: &ScimClient,
    state: &mut RunState,
) -> anyhow::Result<Standing> {
    let Some(settled) = state.settled().filter(|s| s.stands_with(manifest, state.clocks())).cloned() else {
        return Ok(Standing::Falls(None));
    };
    let fingerprints = manifest.sources.iter().map(|(name, config)| async move {
        let source = AnySource::open(name, config, &manifest.attributes_read_from(name), Resume::Stateless, &[])?;
        let fingerprint = source.current_fingerprint().await?;
        anyhow::Ok(fingerprint.map(|f| (name.clone(), f)))
    });
    let found = futures_util::future::try_join_all(fingerprints).await?;
    let found: Option<std::collections::BTreeMap<String, String>> = found.into_iter().collect();
    if found.as_ref() != Some(&settled.sources) {
        return Ok(Standing::Falls(None));
    }
    let mut watch = state.watch().clone();
    let managed = manifest.users.managed_paths();
    let check = check_target(target, settled.target_users, &mut watch, &managed)
        .await
        .context("cannot read the current state of the target")?;
    state.set_watch(watch);
    let against = settled.target_users;
    let TargetCheck::Counted { holds, mut modified, since } = check else {
        return Ok(Standing::Falls(Some(CheckMade { against, check })));
    };
    if !modified.is_empty() {
        // Modified since the margin began: each must be as the state remembers it.
        let ids: Vec<String> = modified.iter().map(|u| u.id.clone()).collect();
        let remembered = state.remembered_users(&ids).await?;
        modified.sort_by(|a, b| a.id.cmp(&b.id));
        if remembered != modified {
            let check = TargetCheck::Counted { holds, modified, since };
            return Ok(Standing::Falls(Some(CheckMade { against, check })));
        }
    }
    Ok(Standing::Stands(Box::new(Planned {
        plan: settled.plan(),
        desired: DesiredState::default(),
        current: CurrentState::default(),
        target_read: TargetRead::Settled { users: holds, since },
        sources: SourceReads::default(),
        users: settled.desired_users,
        settled: Some(settled),
        replanned: None,
    })))
}
