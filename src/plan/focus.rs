//! `--target`: a plan limited to named resources, as Terraform's `-target` does, for repairing
//! one user or one group without touching the rest. Pure: it only drops changes from a plan.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::Plan;
use super::rails::{Rails, check_rails};
use crate::desired::match_key;

/// One `--target` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `user:KEY`: a user by its match value (case-insensitive).
    User(String),
    /// `group:NAME`: a group by its pairing name or its target display name.
    Group(String),
}

impl FromStr for Selector {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(':') {
            Some(("user", key)) if !key.is_empty() => Ok(Self::User(match_key(key))),
            Some(("group", name)) if !name.is_empty() => Ok(Self::Group(name.to_owned())),
            _ => Err(format!("`{text}` is not a resource: use `user:KEY` (the user's match value) or `group:NAME`")),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(key) => write!(f, "user:{key}"),
            Self::Group(name) => write!(f, "group:{name}"),
        }
    }
}

/// Keeps only the changes `selectors` name, plus the creates of users a kept group needs as
/// members (its dependencies, as Terraform includes them). The safety rails are checked again
/// on what is left. With no selectors the plan is returned as it is.
pub fn focus(mut plan: Plan, selectors: &[Selector], rails: &Rails) -> Plan {
    if selectors.is_empty() {
        return plan;
    }
    let mut matched: BTreeSet<&Selector> = BTreeSet::new();
    let groups: Vec<_> = std::mem::take(&mut plan.groups)
        .into_iter()
        .filter(|g| {
            let hit = selectors
                .iter()
                .find(|s| matches!(s, Selector::Group(name) if *name == g.name || *name == g.display_name));
            matched.extend(hit);
            hit.is_some()
        })
        .collect();
    let needed: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.add.iter().chain(&g.members))
        .filter(|m| m.id.is_none())
        .map(|m| m.key.as_str())
        .collect();
    plan.users.retain(|u| {
        let hit = selectors.iter().find(|s| matches!(s, Selector::User(key) if *key == u.key));
        matched.extend(hit);
        hit.is_some() || (u.target_id.is_none() && needed.contains(u.key.as_str()))
    });
    plan.groups = groups;
    plan.conflicts.retain(|c| selectors.contains(&Selector::User(c.key.clone())));
    let mut warnings = vec![format!(
        "resource targeting is in effect ({}): the plan may be incomplete; run a full plan to see every change",
        selectors.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )];
    for selector in selectors.iter().filter(|s| !matched.contains(s)) {
        warnings.push(format!("`--target {selector}` matches no planned change"));
    }
    warnings.append(&mut plan.warnings);
    plan.warnings = warnings;
    plan.blocked = check_rails(&plan, rails);
    plan
}

impl PartialOrd for Selector {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Selector {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use crate::plan::render::text::tests::realistic_plan;

    fn keys(plan: &Plan) -> Vec<(&str, Action)> {
        plan.users.iter().map(|u| (u.key.as_str(), u.action)).collect()
    }

    #[test]
    fn parses_selectors() {
        assert_eq!("user:Ann.Lee@X.example".parse::<Selector>(), Ok(Selector::User("ann.lee@x.example".into())));
        assert_eq!("group:Support".parse::<Selector>(), Ok(Selector::Group("Support".into())));
        for bad in ["ann", "user:", "role:x"] {
            let error = bad.parse::<Selector>().unwrap_err();
            assert!(error.contains("user:KEY"), "{error}");
        }
    }

    #[test]
    fn keeps_one_user() {
        let full = realistic_plan();
        let plan = focus(full, &["user:ann.lee@x.example".parse().unwrap()], &Rails::default());
        assert_eq!(keys(&plan), [("ann.lee@x.example", Action::Update)]);
        assert!(plan.groups.is_empty());
        assert!(plan.warnings[0].starts_with("resource targeting is in effect (user:ann.lee@x.example)"));
    }

    #[test]
    fn a_group_brings_the_creates_it_needs() {
        let plan = focus(realistic_plan(), &["group:Support".parse().unwrap()], &Rails::default());
        assert_eq!(plan.groups.len(), 1);
        // cy.do is created by the plan and added to the group: the create comes along.
        assert_eq!(keys(&plan), [("cy.do@x.example", Action::Create)]);
    }

    #[test]
    fn reports_selectors_that_match_nothing_and_rechecks_the_rails() {
        let limits = Rails {
            deprovision: crate::manifest::model::Limit { max: Some(0), max_percent: None },
            ..Rails::default()
        };
        let full = realistic_plan();
        assert!(check_rails(&full, &limits).is_some(), "the full plan deprovisions one user");
        let plan = focus(full, &["user:nobody@x".parse().unwrap(), "user:bo.ek@x.example".parse().unwrap()], &limits);
        assert!(
            plan.warnings.iter().any(|w| w == "`--target user:nobody@x` matches no planned change"),
            "{:?}",
            plan.warnings
        );
        assert_eq!(plan.blocked, None, "the focused plan deprovisions nobody");
    }
}
