//! What a run that found nothing to do leaves for the next: each source's fingerprint, how many
//! users the state remembers of the target, and the plan it made. A scheduled run that finds
//! every source's fingerprint and the target as they were knows the plan stands (the planner
//! is pure: the same inputs make the same plan) without reading the sources' users, building
//! the desired state or loading the target from the state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Clocks;
use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::plan::delta::Baseline;

/// The inputs and the plan of a run whose plan, made in full, changed nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settled {
    /// By source name, what the run read (`AnySource::fingerprint`).
    pub sources: BTreeMap<String, String>,
    /// The target users the state remembers (what the `count=0` check compares with).
    pub target_users: usize,
    /// The users the desired state held (for the metrics).
    pub desired_users: usize,
    /// The plan as made: no changes; its warnings, conflicts and unmanaged users as shown.
    pub plan: Plan,
    /// `Plan::gone`, which a plan's serialised form leaves out.
    pub gone: BTreeSet<String>,
    /// What the plan knew of each user, to plan again only those that change
    /// (`plan::delta`): kept in a row of its own, read only by a run whose sources changed.
    #[serde(skip)]
    pub baseline: Option<std::sync::Arc<Baseline>>,
}

impl Settled {
    /// What a run leaves when its plan, made in full, changes nothing and would be made again
    /// from the same inputs at any later time; `None` when some source cannot tell its
    /// fingerprint (`fingerprints` is then `None`).
    pub fn of(
        manifest: &Manifest,
        plan: &Plan,
        fingerprints: Option<&BTreeMap<String, String>>,
        target_users: usize,
        desired_users: usize,
        clocks: &Clocks,
    ) -> Option<Self> {
        if plan.has_changes() || !timeless(manifest, clocks, &plan.gone) {
            return None;
        }
        Some(Self {
            sources: fingerprints?.clone(),
            target_users,
            desired_users,
            plan: plan.clone(),
            gone: plan.gone.clone(),
            baseline: None,
        })
    }

    /// With the baseline of the plan (`plan::delta`), when it has one.
    #[must_use]
    pub fn with_baseline(mut self, baseline: Option<Baseline>) -> Self {
        self.baseline = baseline.map(std::sync::Arc::new);
        self
    }

    /// Whether the plan still stands for a run whose deprovision clocks are `clocks`.
    pub fn stands_with(&self, manifest: &Manifest, clocks: &Clocks) -> bool {
        timeless(manifest, clocks, &self.gone)
    }

    /// The plan the run made, as it made it.
    pub fn plan(&self) -> Plan {
        let mut plan = self.plan.clone();
        plan.gone.clone_from(&self.gone);
        plan
    }
}

/// Whether a plan made now is the plan made later from the same inputs: no mapping reads the
/// clock (`now()`), and no user scimform disabled waits for `delete_after_days`.
fn timeless(manifest: &Manifest, clocks: &Clocks, gone: &BTreeSet<String>) -> bool {
    !manifest.reads_clock()
        && (manifest.users.deprovision.delete_after_days.is_none() || (clocks.is_empty() && gone.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures;

    fn fingerprints() -> BTreeMap<String, String> {
        BTreeMap::from([("hr".to_owned(), "sha256:ab".to_owned())])
    }

    #[test]
    fn only_a_plan_without_changes_from_fingerprinted_sources_settles() {
        let manifest = fixtures::manifest(fixtures::MANIFEST);
        let quiet = Plan { warnings: vec!["a manager outside the source".into()], ..Plan::default() };
        let settled = Settled::of(&manifest, &quiet, Some(&fingerprints()), 3, 3, &Clocks::new()).unwrap();
        assert_eq!(settled.plan(), quiet);
        assert_eq!(Settled::of(&manifest, &quiet, None, 3, 3, &Clocks::new()), None, "a source that cannot tell");
        let desired = crate::desired::build(&manifest.users, &[fixtures::person("1", "a@x", "Agent")], &[]);
        let busy = crate::plan::plan(&manifest.users, &desired, &crate::current::CurrentState::default());
        assert!(busy.has_changes());
        assert_eq!(Settled::of(&manifest, &busy, Some(&fingerprints()), 3, 3, &Clocks::new()), None);
    }

    #[test]
    fn a_plan_that_changes_with_time_never_settles() {
        let clocked = fixtures::MANIFEST.replace("title: { from: title, on_empty: remove }", "title: \"{{ now() }}\"");
        assert_ne!(clocked, fixtures::MANIFEST, "the fixture maps title");
        let manifest = fixtures::manifest(&clocked);
        let quiet = Plan::default();
        assert_eq!(Settled::of(&manifest, &quiet, Some(&fingerprints()), 1, 1, &Clocks::new()), None, "now()");

        let deleting = fixtures::MANIFEST.replace("action: disable }", "action: disable, delete_after_days: 30 }");
        assert_ne!(deleting, fixtures::MANIFEST, "the fixture deprovisions");
        let manifest = fixtures::manifest(&deleting);
        let waiting = Plan { gone: ["u9".to_owned()].into(), ..Plan::default() };
        assert_eq!(Settled::of(&manifest, &waiting, Some(&fingerprints()), 1, 1, &Clocks::new()), None);
        let settled = Settled::of(&manifest, &quiet, Some(&fingerprints()), 1, 1, &Clocks::new()).unwrap();
        let clocks = Clocks::from([("u9".to_owned(), jiff::Timestamp::UNIX_EPOCH)]);
        assert!(!settled.stands_with(&manifest, &clocks), "a deletion waits on a clock");
        assert!(settled.stands_with(&manifest, &Clocks::new()));
    }
}
