//! A create's values, held once. The plan of a first run creates every user with every value the
//! desired state holds, and the desired state is kept until the apply ends (a write refused as
//! stale is planned again from it): 100,000 users' values twice. Instead the desired state lends
//! them to the plan: `lend` takes from each user the plan creates the values its create carries,
//! and `restored` gives them back, for the rare apply that plans again.

use crate::desired::DesiredState;
use crate::plan::{Action, Plan};
use crate::scim::ScimPath;

/// Drops from each user `plan` creates the attribute values its create carries as they are.
pub fn lend(desired: &mut DesiredState, plan: &Plan) {
    for change in plan.users.iter().filter(|c| c.action == Action::Create) {
        let Some(user) = desired.users.get_mut(&change.key) else { continue };
        user.attributes
            .retain(|path, value| !change.changes.iter().any(|c| c.path == *path && c.after.as_ref() == Some(value)));
    }
}

/// `desired` as it was before `lend` took the values `plan`'s creates carry.
pub fn restored(desired: &DesiredState, plan: &Plan) -> DesiredState {
    let mut whole = desired.clone();
    for change in plan.users.iter().filter(|c| c.action == Action::Create) {
        let Some(user) = whole.users.get_mut(&change.key) else { continue };
        for c in &change.changes {
            // The marker, `active` and references (`manager`; one to a user this plan creates
            // has no `after`) are kept apart from the values.
            let apart = c.path == ScimPath::external_id()
                || c.path == ScimPath::active()
                || user.references.contains_key(&c.path);
            if let (false, Some(after)) = (apart, &c.after)
                && !user.attributes.contains_key(&c.path)
            {
                user.attributes.insert(c.path.clone(), after.clone());
            }
        }
    }
    whole
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::current::CurrentState;
    use crate::plan::fixtures::{MANIFEST, manifest, person, target_user};
    use crate::record::AttrValue;

    /// Lent and restored, the desired state is as it was and plans the same again; while lent,
    /// a created user holds none of the values its create carries, and a user the plan updates
    /// lends nothing. Managers (one created by the plan, one in the target) stay references.
    #[test]
    fn a_desired_state_lent_to_its_plan_is_restored_whole() {
        let m = manifest(&MANIFEST.replace(
            "  deprovision: { action: disable }",
            "    urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value: { reference: manager }\n  deprovision: { action: disable }",
        ));
        let managed_by = |id: &str, mail: &str, manager: &str| {
            let mut r = person(id, mail, "Agent");
            r.insert("manager", AttrValue::Text(manager.into()));
            r
        };
        let records = [
            person("1", "boss.one@x.example", "Lead"),
            managed_by("2", "ann.lee@x.example", "1"),
            managed_by("3", "bo.ek@x.example", "4"),
            person("4", "new.boss@x.example", "Lead"),
        ];
        let current = CurrentState {
            users: vec![
                target_user("t1", Some("1"), "boss.one@x.example", "Lead"),
                target_user("t3", Some("3"), "bo.ek@x.example", "Lead"),
            ],
            groups: BTreeMap::new(),
        };
        let desired = crate::desired::build(&m.users, &records, &[]);
        let plan = crate::plan::plan(&m.users, &desired, &current);
        let actions: Vec<(&str, Action)> = plan.users.iter().map(|c| (c.key.as_str(), c.action)).collect();
        assert_eq!(
            actions,
            [
                ("ann.lee@x.example", Action::Create),
                ("bo.ek@x.example", Action::Update),
                ("new.boss@x.example", Action::Create)
            ]
        );
        let mut lent = desired.clone();
        lend(&mut lent, &plan);
        for key in ["ann.lee@x.example", "new.boss@x.example"] {
            assert!(lent.users[key].attributes.is_empty(), "{key}: {:?}", lent.users[key].attributes);
        }
        assert_eq!(lent.users["bo.ek@x.example"], desired.users["bo.ek@x.example"]);
        assert_eq!(lent.users["ann.lee@x.example"].references, desired.users["ann.lee@x.example"].references);
        let back = restored(&lent, &plan);
        assert_eq!(back, desired);
        assert_eq!(crate::plan::plan(&m.users, &back, &current), plan);
    }
}
