//! Who is in scope: a record's group memberships and attributes held against `users.scope`,
//! compared without case as Entra's scoping filters are. Pure.

use std::collections::BTreeSet;

use crate::manifest::model::{Bound, Scope, ScopeClause, ScopeTest};
use crate::record::{AttrValue, SourceRecord};

/// The scope groups as read: their members' user keys and their names, for the reason.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeMembers {
    pub keys: BTreeSet<String>,
    pub groups: Vec<String>,
}

impl ScopeMembers {
    /// `group "CC Agents"`, or `any of groups "A", "B"`.
    pub fn describe(&self) -> String {
        describe_groups(&self.groups)
    }
}

/// Scope groups by name, for a reason: `group "CC Agents"`, or `any of groups "A", "B"`.
pub fn describe_groups(names: &[String]) -> String {
    let names: Vec<String> = names.iter().map(|g| format!("{g:?}")).collect();
    match names.as_slice() {
        [one] => format!("group {one}"),
        many => format!("any of groups {}", many.join(", ")),
    }
}

/// How the scope's groups (`member_of`) were read.
#[derive(Debug, Clone, Default)]
pub enum ScopeGroups {
    /// The scope names no groups.
    #[default]
    None,
    /// Read here, in the order of `member_of`: each record is checked against their members.
    Read(Vec<crate::record::SourceGroup>),
    /// The users' source read only their members (AD's in-chain filter, Graph's group
    /// members): every record is a member, and an owned user missing from the read left them.
    /// Names the groups for the plan (`group "CC Agents"`).
    BySource(String),
}

/// Why the record (whose user key is `key`) is out of scope, or `None` when it is in.
/// `members` are the scope groups' members when membership is checked here; `None` when the
/// source read only those groups' members (every record is a member then).
pub fn why_out(scope: &Scope, record: &SourceRecord, key: &str, members: Option<&ScopeMembers>) -> Option<String> {
    if let Some(members) = members.filter(|_| !scope.member_of.is_empty())
        && !members.keys.contains(key)
    {
        return Some(format!("no longer in {}", members.describe()));
    }
    if scope.filters.is_empty() {
        return None;
    }
    let mut first_failure = None;
    for filter in &scope.filters {
        match filter.iter().find(|clause| !holds(clause, record)) {
            None => return None,
            Some(clause) => {
                first_failure.get_or_insert(clause);
            }
        }
    }
    let clause = first_failure?;
    let values = values(record, &clause.attribute);
    let shown = match values.as_slice() {
        [] => "empty".to_owned(),
        [one] => format!("{one:?}"),
        many => format!("{many:?}"),
    };
    Some(format!("no scope filter holds ({} is {shown}; the filter asks {clause})", clause.attribute))
}

/// Whether one clause holds for the record.
pub fn holds(clause: &ScopeClause, record: &SourceRecord) -> bool {
    let values = values(record, &clause.attribute);
    let lower: Vec<String> = values.iter().map(|v| v.to_lowercase()).collect();
    let any = |test: &dyn Fn(&str) -> bool| lower.iter().any(|v| test(v));
    match &clause.test {
        ScopeTest::Equals(want) => any(&|v| v == want),
        ScopeTest::NotEquals(want) => !any(&|v| v == want),
        ScopeTest::In(wants) => any(&|v| wants.iter().any(|w| w == v)),
        ScopeTest::NotIn(wants) => !any(&|v| wants.iter().any(|w| w == v)),
        ScopeTest::StartsWith(want) => any(&|v| v.starts_with(want.as_str())),
        ScopeTest::EndsWith(want) => any(&|v| v.ends_with(want.as_str())),
        ScopeTest::Contains(want) => any(&|v| v.contains(want.as_str())),
        ScopeTest::Matches(regex) => values.iter().any(|v| regex.is_match(v)),
        ScopeTest::IsEmpty => values.is_empty(),
        ScopeTest::IsNotEmpty => !values.is_empty(),
        ScopeTest::GreaterThan(bound) => {
            values.iter().any(|v| compare(v, *bound).is_some_and(std::cmp::Ordering::is_gt))
        }
        ScopeTest::LessThan(bound) => values.iter().any(|v| compare(v, *bound).is_some_and(std::cmp::Ordering::is_lt)),
    }
}

/// A value against a bound: as numbers when the bound is one, as times when it is a time; a
/// value that is neither compares with nothing.
fn compare(value: &str, bound: Bound) -> Option<std::cmp::Ordering> {
    match bound {
        Bound::Number(n) => value.trim().parse::<f64>().ok()?.partial_cmp(&n),
        Bound::Time(t) => Some(value.trim().parse::<jiff::Timestamp>().ok()?.cmp(&t)),
    }
}

/// The record's non-empty values of `attribute` as text (`id` and `disabled` as mappings see
/// them).
fn values(record: &SourceRecord, attribute: &str) -> Vec<String> {
    let values = match record.get(attribute) {
        Some(AttrValue::Text(text)) => vec![text.clone()],
        Some(AttrValue::List(items)) => items.clone(),
        Some(AttrValue::Bool(b)) => vec![b.to_string()],
        None if attribute.eq_ignore_ascii_case("disabled") => vec![record.disabled.to_string()],
        None if attribute.eq_ignore_ascii_case("id") => vec![record.id.clone()],
        None => Vec::new(),
    };
    values.into_iter().filter(|v| !v.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::manifest;

    /// The scope of a manifest whose `users.scope` is `scope` (YAML, indented by four).
    fn scope(scope: &str) -> Scope {
        let text =
            crate::plan::fixtures::MANIFEST.replace("  deprovision:", &format!("  scope:\n{scope}  deprovision:"));
        manifest(&text).users.scope
    }

    fn record(attributes: &[(&str, AttrValue)]) -> SourceRecord {
        let mut record = SourceRecord::new("r1");
        for (name, value) in attributes {
            record.insert(name, value.clone());
        }
        record
    }

    fn text(value: &str) -> AttrValue {
        AttrValue::Text(value.into())
    }

    /// One clause per operator, each against a value it holds for and one it does not.
    #[test]
    fn every_operator_compares_without_case() {
        let cases: &[(&str, AttrValue, AttrValue)] = &[
            ("{ attribute: d, operator: equals, value: Support }", text("SUPPORT"), text("Sales")),
            ("{ attribute: d, operator: not_equals, value: Contractor }", text("Employee"), text("contractor")),
            ("{ attribute: d, operator: in, values: [Support, Billing] }", text("billing"), text("Sales")),
            ("{ attribute: d, operator: not_in, values: [Sales, Legal] }", text("Support"), text("LEGAL")),
            ("{ attribute: d, operator: starts_with, value: Team }", text("team lead"), text("Lead of team")),
            (
                "{ attribute: d, operator: ends_with, value: '@corp.example' }",
                text("a@CORP.example"),
                text("a@x.example"),
            ),
            ("{ attribute: d, operator: contains, value: desk }", text("Help DESK 2"), text("Helpdsk")),
            (
                "{ attribute: d, operator: matches, value: '^Team Lead' }",
                text("team lead, west"),
                text("West team lead"),
            ),
            ("{ attribute: d, operator: is_empty }", text("  "), text("x")),
            ("{ attribute: d, operator: is_not_empty }", AttrValue::List(vec!["a".into()]), AttrValue::List(vec![])),
            ("{ attribute: d, operator: greater_than, value: 10 }", text("10.5"), text("9")),
            ("{ attribute: d, operator: less_than, value: 10 }", text("-1"), text("not a number")),
            (
                "{ attribute: d, operator: greater_than, value: '2026-01-01T00:00:00Z' }",
                text("2026-06-30T12:00:00Z"),
                text("2025-12-31T23:59:59Z"),
            ),
            (
                "{ attribute: d, operator: less_than, value: '2026-01-01T00:00:00Z' }",
                text("2025-12-31T23:59:59Z"),
                text("2026-01-01T00:00:00Z"),
            ),
            ("{ attribute: d, operator: equals, value: true }", AttrValue::Bool(true), AttrValue::Bool(false)),
            (
                "{ attribute: d, operator: in, values: [x, y] }",
                AttrValue::List(vec!["z".into(), "Y".into()]),
                text("w"),
            ),
        ];
        for (clause, yes, no) in cases {
            let scope = scope(&format!("    filters:\n      - - {clause}\n"));
            let clause_of = &scope.filters[0][0];
            assert!(holds(clause_of, &record(&[("d", yes.clone())])), "{clause} should hold for {yes:?}");
            assert!(!holds(clause_of, &record(&[("d", no.clone())])), "{clause} should not hold for {no:?}");
        }
        // A missing attribute is empty: equal to nothing, not equal to anything.
        let scope = scope("    filters:\n      - - { attribute: d, operator: not_equals, value: x }\n");
        assert!(holds(&scope.filters[0][0], &record(&[])));
    }

    #[test]
    fn filters_are_an_or_of_ands_and_say_which_clause_failed() {
        let scope = scope(
            "    filters:\n      - - { attribute: department, operator: equals, value: Support }\n        - { attribute: employeeType, operator: not_equals, value: Contractor }\n      - - { attribute: title, operator: matches, value: '^Team Lead' }\n",
        );
        let support = record(&[("department", text("Support")), ("employeeType", text("Employee"))]);
        assert_eq!(why_out(&scope, &support, "k", None), None);
        let lead = record(&[("department", text("Sales")), ("title", text("Team Lead West"))]);
        assert_eq!(why_out(&scope, &lead, "k", None), None, "the second filter holds");
        let contractor = record(&[("department", text("Support")), ("employeeType", text("Contractor"))]);
        assert_eq!(
            why_out(&scope, &contractor, "k", None).as_deref(),
            Some(
                "no scope filter holds (employeeType is \"Contractor\"; the filter asks employeeType not_equals \"contractor\")"
            )
        );
    }

    #[test]
    fn membership_is_checked_by_key_unless_the_source_read_only_members() {
        let scope = scope("    member_of:\n      - { source: hr, group: { name: CC Agents }, nested: true }\n");
        let members =
            ScopeMembers { keys: BTreeSet::from(["ann@x.example".to_owned()]), groups: vec!["CC Agents".into()] };
        let anyone = record(&[]);
        assert_eq!(why_out(&scope, &anyone, "ann@x.example", Some(&members)), None);
        assert_eq!(
            why_out(&scope, &anyone, "bo@x.example", Some(&members)).as_deref(),
            Some("no longer in group \"CC Agents\"")
        );
        assert_eq!(why_out(&scope, &anyone, "bo@x.example", None), None, "read by the source: a member");
    }
}
