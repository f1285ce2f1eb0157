//! `users.scope`: which source users are provisioned, by group and by filters.

use super::{BTreeMap, Checker, Segment, SourceConfig, UserMapping, key};
use crate::manifest::model::{Bound, Scope, ScopeClause, ScopeGroup, ScopeTest};
use crate::manifest::raw::{RawScope, RawScopeClause, ScopeOperator};

impl Checker<'_> {
    /// A Graph users' source scoped by its own groups reads the groups' user members: Graph
    /// takes neither an OData `filter` nor `$expand=manager` there.
    pub(super) fn graph_scope(&mut self, sources: &BTreeMap<String, SourceConfig>, users: &UserMapping) {
        let Some(SourceConfig::Graph(graph)) = sources.get(&users.source) else { return };
        let scope = &users.scope.member_of;
        if scope.is_empty() || !scope.iter().all(|g| g.source == users.source) {
            return;
        }
        let at = [key("users"), key("scope"), key("member_of")];
        if graph.filter.is_some() {
            self.report_at(
                &at,
                format!("source `{}` is read through its scope groups' members, which take no `filter`", users.source),
                Some("move the source's `filter` into `users.scope.filters`".into()),
            );
        }
        if users.source_attributes().iter().any(|a| a.eq_ignore_ascii_case("manager")) {
            self.report_at(
                &at,
                format!(
                    "source `{}` is read through its scope groups' members, which cannot expand `manager`",
                    users.source
                ),
                Some("drop the `manager` mapping, or scope by `users.scope.filters` instead".into()),
            );
        }
    }

    /// `users.scope`: each group a declared source's, each clause with the value its operator
    /// needs (a pattern that compiles, a number or an RFC 3339 time to compare with).
    pub(super) fn scope(&mut self, raw: Option<&RawScope>) -> Scope {
        let mut scope = Scope::default();
        let Some(raw) = raw else { return scope };
        let here = [key("users"), key("scope")];
        for (index, group) in raw.member_of.iter().enumerate() {
            let at = [&here[..], &[key("member_of"), Segment::Index(index)]].concat();
            self.source_reference(&[&at[..], &[key("source")]].concat(), &group.source);
            if let Some(selector) = self.group_selector(&group.group, &[&at[..], &[key("group")]].concat()) {
                scope.member_of.push(ScopeGroup {
                    source: group.source.clone(),
                    group: selector,
                    nested: group.nested,
                });
            }
        }
        for (index, filter) in raw.filters.iter().enumerate() {
            let at = [&here[..], &[key("filters"), Segment::Index(index)]].concat();
            if filter.is_empty() {
                self.report_at(&at, "a filter needs at least one clause", Some("remove the empty filter".into()));
                continue;
            }
            let clauses: Vec<ScopeClause> = filter
                .iter()
                .enumerate()
                .filter_map(|(i, clause)| self.scope_clause(clause, &[&at[..], &[Segment::Index(i)]].concat()))
                .collect();
            if clauses.len() == filter.len() {
                scope.filters.push(clauses);
            }
        }
        scope
    }

    fn scope_clause(&mut self, raw: &RawScopeClause, at: &[Segment]) -> Option<ScopeClause> {
        use ScopeOperator as Op;
        let name =
            serde_json::to_value(raw.operator).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let needs_values = matches!(raw.operator, Op::In | Op::NotIn);
        let needs_value = !needs_values && !matches!(raw.operator, Op::IsEmpty | Op::IsNotEmpty);
        let value_at = [at, &[key("value")]].concat();
        if needs_values && (raw.values.is_none() || raw.value.is_some()) {
            self.report_at(at, format!("`{name}` compares with a list: give `values: [...]`"), None);
            return None;
        }
        if needs_value && (raw.value.is_none() || raw.values.is_some()) {
            self.report_at(at, format!("`{name}` compares with one value: give `value:`"), None);
            return None;
        }
        if !needs_value && !needs_values && (raw.value.is_some() || raw.values.is_some()) {
            self.report_at(at, format!("`{name}` takes no `value`"), Some("remove `value`".into()));
            return None;
        }
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.to_lowercase()),
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => Some(v.to_string()),
            _ => None,
        };
        let value = match raw.value.as_ref().map(text) {
            Some(None) => {
                self.report_at(&value_at, "`value` must be a string, a number or a boolean", None);
                return None;
            }
            other => other.flatten().unwrap_or_default(),
        };
        let values: Option<Vec<String>> = raw.values.as_ref().map(|v| v.iter().filter_map(text).collect());
        if values.as_ref().zip(raw.values.as_ref()).is_some_and(|(ok, all)| ok.len() != all.len()) {
            self.report_at(
                &[at, &[key("values")]].concat(),
                "each of `values` must be a string, a number or a boolean",
                None,
            );
            return None;
        }
        let bound = |checker: &mut Self| {
            let original =
                raw.value.as_ref().and_then(|v| v.as_str().map(str::to_owned).or_else(|| Some(v.to_string())));
            let original = original.unwrap_or_default();
            if let Ok(number) = original.parse::<f64>() {
                return Some(Bound::Number(number));
            }
            if let Ok(time) = original.parse::<jiff::Timestamp>() {
                return Some(Bound::Time(time));
            }
            checker.report_at(
                &value_at,
                format!("`{original}` is neither a number nor an RFC 3339 time"),
                Some("compare with a number (`42`) or a time (`2026-01-31T00:00:00Z`)".into()),
            );
            None
        };
        let scope_test = match raw.operator {
            Op::Equals => ScopeTest::Equals(value),
            Op::NotEquals => ScopeTest::NotEquals(value),
            Op::In => ScopeTest::In(values.unwrap_or_default()),
            Op::NotIn => ScopeTest::NotIn(values.unwrap_or_default()),
            Op::StartsWith => ScopeTest::StartsWith(value),
            Op::EndsWith => ScopeTest::EndsWith(value),
            Op::Contains => ScopeTest::Contains(value),
            Op::Matches => {
                let pattern = raw.value.as_ref().and_then(|v| v.as_str()).unwrap_or_default();
                match regex::RegexBuilder::new(pattern).case_insensitive(true).size_limit(1 << 20).build() {
                    Ok(regex) => ScopeTest::Matches(regex),
                    Err(error) => {
                        self.report_at(&value_at, format!("invalid regular expression: {error}"), None);
                        return None;
                    }
                }
            }
            Op::IsEmpty => ScopeTest::IsEmpty,
            Op::IsNotEmpty => ScopeTest::IsNotEmpty,
            Op::GreaterThan => ScopeTest::GreaterThan(bound(self)?),
            Op::LessThan => ScopeTest::LessThan(bound(self)?),
        };
        Some(ScopeClause { attribute: raw.attribute.clone(), test: scope_test })
    }
}
