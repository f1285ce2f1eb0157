//! The plan: what must change in the target to make it match the desired state.
//!
//! `diff::plan` computes it (pure, deterministic: sorted everywhere, no clock); `requests` turns
//! it into SCIM requests; `render` shows it. `Action` drives apply (a deprovision is an action of
//! its own); `ActionReason` only explains a choice to the reader and must never steer apply.

pub mod delta;
pub mod diff;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod document;
pub mod focus;
pub mod lend;
pub mod precondition;
pub mod rails;
pub mod render;
pub mod requests;
pub mod set;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use diff::{Parts, Rest, plan, plan_at, plan_parts};
pub use document::PlanDocument;
pub use precondition::Precondition;

use crate::manifest::model::MembershipMethod;
use crate::scim::ScimPath;

/// What happens to one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// POST a new user.
    Create,
    /// PATCH the differing managed attributes.
    Update,
    /// PATCH a matching user without our ownership marker: set the marker and the differing
    /// attributes, instead of creating a duplicate.
    Adopt,
    /// PATCH `active` from true to false (and any other differing attribute): the source
    /// account is disabled.
    Disable,
    /// PATCH `active` from true to false: the user carries our ownership marker and is in no
    /// source (`users.deprovision.action: disable`). Applied last, counted by the rails.
    Deprovision,
    /// DELETE the user: it carries our ownership marker and is in no source
    /// (`users.deprovision.action: delete`). Applied last, counted by the rails.
    Delete,
}

/// Why an action was chosen. Only for the renderers; apply must not read this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionReason {
    /// The user's source record left `users.scope` (`UserChange::why` says how).
    LeftScope,
    /// scimform disabled the user `delete_after_days` ago and it is still gone.
    DisabledLongEnough,
    /// The source account is disabled.
    SourceDisabled,
}

/// One managed attribute that differs. `before: None` means the target has no value; `after:
/// None` means the value is removed. What a create (most changes of a first run) has not is
/// boxed: a plan of 100,000 creates holds a million changes, at 64 bytes each rather than 104.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    pub path: ScimPath,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Box<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// For a set attribute (skills, languages, roles): how its entries compare and are written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Box<set::SetChange>>,
    /// The value is the target id of the user with this key, created by this plan: known after
    /// apply (`after` is `None` until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed whole (a `Box<str>` would take 16 bytes here, not 8).
    pub reference: Option<Box<String>>,
}

impl AttributeChange {
    /// A plain change of one attribute: `before` as read (none for a create), `after` as wanted
    /// (none to remove it).
    pub fn new(path: ScimPath, before: Option<Value>, after: Option<Value>) -> Self {
        Self { path, before: before.map(Box::new), after, set: None, reference: None }
    }

    /// The same change, to a set attribute compared and written as `set` says.
    #[must_use]
    pub fn with_set(mut self, set: Option<set::SetChange>) -> Self {
        self.set = set.map(Box::new);
        self
    }
}

/// One user to change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserChange {
    /// The user's match value (`userName`), normalised.
    pub key: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ActionReason>,
    /// The reason in words, where it needs them (`no longer in group "CC Agents"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The target's id; `None` for a create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<String>,
    /// What the user must still look like for this change to apply.
    pub precondition: Precondition,
    /// For a create: every attribute it is created with.
    pub changes: Vec<AttributeChange>,
}

impl UserChange {
    /// Whether this change takes a user away (disabled for leaving every source, or deleted):
    /// applied last, after everything that might still need the user, and counted by the rails.
    pub fn is_deprovision(&self) -> bool {
        matches!(self.action, Action::Deprovision | Action::Delete)
    }

    /// The `userName` this change writes (a create's, always): how a user that may exist already
    /// is looked up.
    pub fn user_name(&self) -> Option<&str> {
        self.changes.iter().find(|c| c.path.is("userName")).and_then(|c| c.after.as_ref()).and_then(Value::as_str)
    }
}

/// A member in a membership change: the user's key and, when it exists yet, its target id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    pub key: String,
    /// `None`: the user is created by this plan ("known after apply").
    pub id: Option<String>,
}

/// One paired group whose membership changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupChange {
    /// The pairing's name.
    pub name: String,
    pub target_id: String,
    pub display_name: String,
    /// What the group must still look like for this change to apply.
    pub precondition: Precondition,
    pub method: MembershipMethod,
    /// Members added per PATCH operation.
    pub members_per_operation: usize,
    /// Member changes per request, if bounded (apply splits the change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members_per_request: Option<usize>,
    /// The target group does not exist: it is created (POST) with `add` as its members.
    pub create: bool,
    pub add: Vec<Member>,
    pub remove: Vec<Member>,
    /// The whole desired membership, for `method: put` (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// How many members the target group has before the change (what `max_removals_percent`
    /// is a share of).
    #[serde(default)]
    pub members_before: usize,
}

/// A target user left untouched because it belongs to someone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub key: String,
    pub target_id: String,
    pub message: String,
}

/// The whole plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Sorted by key.
    pub users: Vec<UserChange>,
    /// Sorted by pairing name.
    pub groups: Vec<GroupChange>,
    pub conflicts: Vec<Conflict>,
    /// Things the reader should know that change nothing (unresolved members, disabled source
    /// users not created).
    pub warnings: Vec<String>,
    /// Target users carrying our ownership marker, as read: what `max_percent` is a share of.
    pub owned_users: usize,
    /// Set when a safety rail refuses the plan (too many deprovisions); apply refuses it unless
    /// allowed at least `deprovisions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<Blocked>,
    /// Target users no desired user is and that carry no marker of ours: never touched, listed
    /// so the reader knows they are there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<UnmanagedUser>,
    /// Target ids of the owned users in no source or out of scope, changed by the plan or not:
    /// whose deprovision clocks (`delete_after_days`) run on. Not part of a saved plan.
    #[serde(skip)]
    pub gone: std::collections::BTreeSet<String>,
}

/// A target user this manifest does not manage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnmanagedUser {
    pub id: String,
    #[serde(rename = "userName")]
    pub user_name: String,
}

/// What the planner knows of time, for `delete_after_days`: the run's clock, and when
/// scimform disabled each user that is gone (by target id). Passed in: the planner reads no
/// clock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clock {
    pub now: Option<jiff::Timestamp>,
    pub disabled_at: std::collections::BTreeMap<String, jiff::Timestamp>,
}

/// Why a plan is refused: every limit it goes over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    pub limits: Vec<LimitExceeded>,
}

/// One limit a plan goes over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitExceeded {
    /// What `apply --allow NAME=N` names: `deprovision`, `attribute_changes.userName`,
    /// `removals.Support`.
    pub name: String,
    /// How much the plan does against it: `--allow` must give at least this.
    pub count: usize,
    pub reason: String,
}

impl Blocked {
    /// The limits' reasons, joined.
    pub fn reason(&self) -> String {
        self.limits.iter().map(|l| l.reason.as_str()).collect::<Vec<_>>().join("; ")
    }

    /// `--allow deprovision=3 --allow removals.Support=4`: what lets the plan through.
    pub fn allow_flags(&self) -> String {
        self.limits.iter().map(|l| format!("--allow {}={}", l.name, l.count)).collect::<Vec<_>>().join(" ")
    }
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub adopt: usize,
    pub disable: usize,
    pub delete: usize,
    pub groups: usize,
}

/// `Plan: 1 to create, 2 to update, 0 to adopt, 1 to disable, 0 to delete, 1 group to change.`
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Plan: {} to create, {} to update, {} to adopt, {} to disable, {} to delete, {} {} to change.",
            self.create,
            self.update,
            self.adopt,
            self.disable,
            self.delete,
            self.groups,
            if self.groups == 1 { "group" } else { "groups" },
        )
    }
}

impl Plan {
    pub fn summary(&self) -> Summary {
        // A group created is a resource created, like a user; `groups` counts memberships of
        // groups that exist.
        let created = self.groups.iter().filter(|g| g.create).count();
        let mut s = Summary { create: created, groups: self.groups.len() - created, ..Summary::default() };
        for change in &self.users {
            match change.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Adopt => s.adopt += 1,
                Action::Disable | Action::Deprovision => s.disable += 1,
                Action::Delete => s.delete += 1,
            }
        }
        s
    }

    /// The users this plan deprovisions (in no source any more).
    pub fn deprovisions(&self) -> impl Iterator<Item = &UserChange> {
        self.users.iter().filter(|c| c.is_deprovision())
    }

    /// Whether applying the plan would send anything.
    pub fn has_changes(&self) -> bool {
        !self.users.is_empty() || !self.groups.is_empty()
    }
}

#[cfg(test)]
mod tests {
    /// A first run's plan holds a million of these: what a create has not is boxed.
    #[test]
    fn an_attribute_change_is_64_bytes() {
        assert_eq!(size_of::<super::AttributeChange>(), 64);
    }
}
