//! The plan as text, in Terraform's conventions: a comment line saying what will happen, a
//! block with `+`/`~`/`-` markers, aligned attribute names, and a summary line.

use std::fmt::Write;

use serde_json::Value;

use crate::plan::{Action, ActionReason, AttributeChange, GroupChange, Plan, UserChange};

/// Renders the whole plan (its warnings apart: `render_warnings`). Deterministic: no colours,
/// no clock, no paths.
pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.has_changes() {
        out.push_str("scimform will perform the following actions:\n");
        // Shown in apply order: creates and updates, memberships, then deprovisioning.
        let last = |c: &&UserChange| c.is_deprovision();
        for change in plan.users.iter().filter(|c| !last(c)) {
            out.push('\n');
            user(&mut out, change);
        }
        for change in &plan.groups {
            out.push('\n');
            group(&mut out, change);
        }
        for change in plan.users.iter().filter(last) {
            out.push('\n');
            user(&mut out, change);
        }
        let _ = writeln!(out, "\n{}", plan.summary());
    } else {
        out.push_str("No changes. The target matches the manifest.\n");
    }
    if !plan.conflicts.is_empty() {
        out.push_str("\nConflicts (left untouched):\n");
        for conflict in &plan.conflicts {
            let _ =
                writeln!(out, "  ! user {} (id {}): {}", quoted(&conflict.key), conflict.target_id, conflict.message);
        }
    }
    if let Some(blocked) = &plan.blocked {
        let _ = writeln!(
            out,
            "\nError: this plan is blocked: {}. `apply` refuses it unless given `{}` after review.",
            blocked.reason(),
            blocked.allow_flags()
        );
    }
    out
}

/// The target users the manifest does not manage, for `plan --show-unmanaged`.
pub fn render_unmanaged(plan: &Plan) -> String {
    let mut out = format!("\nUsers in the target not managed by this manifest ({}):\n", plan.unmanaged.len());
    for user in &plan.unmanaged {
        let _ = writeln!(out, "  {} (id {})", quoted(&user.user_name), user.id);
    }
    out
}

/// The plan's warnings, for stderr: stdout holds the plan alone, so it can be piped or saved.
pub fn render_warnings(plan: &Plan) -> String {
    let unmanaged = match plan.unmanaged.len() {
        0 => String::new(),
        n => format!(
            "\nNote: {n} user(s) in the target are not managed by this manifest and are left alone; `plan --show-unmanaged` lists them.\n"
        ),
    };
    plan.warnings.iter().fold(unmanaged, |mut out, warning| {
        let _ = writeln!(out, "\nWarning: {warning}");
        out
    })
}

/// Colours a rendered plan for a terminal: the `+`/`~`/`-` markers as Terraform colours them,
/// and the words `Error:` and `Warning:`. Only the caller knows whether colour is wanted.
pub fn colorize(text: &str) -> String {
    use anstyle::{AnsiColor, Style};
    let paint = |style: Style, what: &str| format!("{}{what}{}", style.render(), style.render_reset());
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let colour = match body.chars().next() {
            Some('+') => Some(AnsiColor::Green),
            Some('~') => Some(AnsiColor::Yellow),
            Some('-') => Some(AnsiColor::Red),
            _ => None,
        };
        if let Some(colour) = colour.filter(|_| body.len() > 1 && body.as_bytes()[1] == b' ') {
            out.push_str(indent);
            out.push_str(&paint(colour.on_default(), &body[..1]));
            out.push_str(&body[1..]);
        } else if let Some(rest) = line.strip_prefix("Error:") {
            out.push_str(&paint(AnsiColor::Red.on_default().bold(), "Error:"));
            out.push_str(rest);
        } else if let Some(rest) = line.strip_prefix("Warning:") {
            out.push_str(&paint(AnsiColor::Yellow.on_default().bold(), "Warning:"));
            out.push_str(rest);
        } else {
            out.push_str(line);
        }
    }
    out
}

/// A large membership change lists this many members each way, then a count.
pub(super) const MAX_MEMBERS_SHOWN: usize = 50;

/// Names longer than this are not used to align the others.
const MAX_ALIGN: usize = 32;

pub(super) fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

fn value(value: &Value) -> String {
    value.to_string()
}

/// Attribute names with characters Terraform would not print bare are single-quoted.
fn path_label(change: &AttributeChange) -> String {
    let text = change.path.to_string();
    if text.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_') { text } else { format!("'{text}'") }
}

/// What happens to a user, in words, and its marker.
pub(super) fn describe_user(change: &UserChange) -> (std::borrow::Cow<'static, str>, char) {
    let left_scope = || format!("(left the scope: {})", change.why.as_deref().unwrap_or("out of scope"));
    let (what, marker) = match (change.action, change.reason) {
        (Action::Create, _) => ("will be created", '+'),
        (Action::Update, _) => ("will be updated in place", '~'),
        (Action::Adopt, _) => ("will be adopted (it matches but carries no ownership marker)", '~'),
        (Action::Deprovision, Some(ActionReason::LeftScope)) => {
            return (format!("will be disabled {}", left_scope()).into(), '-');
        }
        (Action::Delete, Some(ActionReason::LeftScope)) => {
            return (format!("will be deleted {}", left_scope()).into(), '-');
        }
        (Action::Delete, Some(ActionReason::DisabledLongEnough)) => {
            return (
                format!("will be deleted ({})", change.why.as_deref().unwrap_or("disabled long enough")).into(),
                '-',
            );
        }
        (Action::Deprovision, _) => ("will be disabled (not in any source)", '-'),
        (Action::Disable, _) => ("will be disabled (disabled in the source)", '-'),
        (Action::Delete, _) => ("will be deleted (not in any source)", '-'),
    };
    (what.into(), marker)
}

fn user(out: &mut String, change: &UserChange) {
    let name = quoted(&change.key);
    let (what, marker) = describe_user(change);
    let _ = writeln!(out, "  # user {name} {what}");
    if change.action == Action::Delete {
        let _ = writeln!(out, "  - user {name}");
        return;
    }
    if let [only] = change.changes.as_slice()
        && matches!(change.action, Action::Disable | Action::Deprovision)
        && only.path.is("active")
    {
        let _ = writeln!(out, "  - user {name} {{ active = true -> false }}");
        return;
    }
    let _ = writeln!(out, "  {marker} user {name} {{");
    // Align the `=` signs as Terraform does, but let an unusually long name (an extension URN)
    // stand out rather than push every other line far to the right.
    let width = change
        .changes
        .iter()
        .filter(|c| c.set.is_none())
        .map(|c| path_label(c).chars().count())
        .filter(|w| *w <= MAX_ALIGN)
        .max()
        .unwrap_or(0);
    for c in &change.changes {
        if let Some(set) = &c.set {
            for (marker, line) in set.lines(&c.path, c.before.as_deref(), c.after.as_ref()) {
                let _ = writeln!(out, "      {marker} {line}");
            }
            continue;
        }
        let label = path_label(c);
        let pad = " ".repeat(width.saturating_sub(label.chars().count()));
        if let Some(key) = &c.reference {
            let after = format!("(known after apply: the id of user {})", quoted(key));
            let line = match &c.before {
                None => format!("+ {label}{pad} = {after}"),
                Some(before) => format!("~ {label}{pad} = {} -> {after}", value(before)),
            };
            let _ = writeln!(out, "      {line}");
            continue;
        }
        let line = match (&c.before, &c.after) {
            (None, Some(after)) => format!("+ {label}{pad} = {}", value(after)),
            (Some(before), None) => format!("- {label}{pad} = {} -> null", value(before)),
            (Some(before), Some(after)) => format!("~ {label}{pad} = {} -> {}", value(before), value(after)),
            (None, None) => continue,
        };
        let _ = writeln!(out, "      {line}");
    }
    out.push_str("    }\n");
}

fn group(out: &mut String, change: &GroupChange) {
    let name = quoted(&change.name);
    let (added, removed) = (change.add.len(), change.remove.len());
    if change.create {
        let _ = writeln!(out, "  # group {name} will be created with {added} member(s)");
        let _ = writeln!(out, "  + group {name} {{");
    } else {
        let _ = writeln!(out, "  # group {name} membership will change: {added} to add, {removed} to remove");
        let _ = writeln!(out, "  ~ group {name} {{");
    }
    if !change.display_name.is_empty() && change.display_name != change.name {
        let display_name = quoted(&change.display_name);
        if change.target_id.is_empty() {
            let _ = writeln!(out, "      # target group {display_name}");
        } else {
            let _ = writeln!(out, "      # target group {display_name} (id {})", change.target_id);
        }
    }
    for member in change.add.iter().take(MAX_MEMBERS_SHOWN) {
        let after = if member.id.is_none() { " (known after apply)" } else { "" };
        let _ = writeln!(out, "      + member {}{after}", quoted(&member.key));
    }
    if added > MAX_MEMBERS_SHOWN {
        let _ = writeln!(out, "      # ... and {} more to add", added - MAX_MEMBERS_SHOWN);
    }
    for member in change.remove.iter().take(MAX_MEMBERS_SHOWN) {
        let _ = writeln!(out, "      - member {}", quoted(&member.key));
    }
    if removed > MAX_MEMBERS_SHOWN {
        let _ = writeln!(out, "      # ... and {} more to remove", removed - MAX_MEMBERS_SHOWN);
    }
    out.push_str("    }\n");
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::current::{CurrentGroup, CurrentState};
    use crate::desired::build;
    use crate::manifest::model::TargetGroupRef;
    use crate::plan::fixtures::{MANIFEST, manifest, person, target_user};

    /// One plan with every kind of change.
    pub(crate) fn realistic_plan() -> Plan {
        let m = manifest(MANIFEST);
        let mut leaver = person("4", "di.ro@x.example", "Agent");
        leaver.disabled = true;
        let records = [
            person("1", "ann.lee@x.example", "Team Lead"),
            person("2", "bo.ek@x.example", "Agent"),
            person("3", "cy.do@x.example", "Agent"),
            leaver,
            person("6", "fay.yu@x.example", "Agent"),
        ];
        let groups = [crate::plan::fixtures::support(&records, &["1", "3"])];
        let desired = build(&m.users, &records, &groups);
        let current = realistic_current();
        crate::plan::plan(&m.users, &desired, &current)
    }

    /// The target `realistic_plan` is made against.
    pub(crate) fn realistic_current() -> CurrentState {
        let mut foreign = target_user("t6", None, "fay.yu@x.example", "Agent");
        foreign.set(&crate::scim::ScimPath::parse("externalId").unwrap(), json!("partner-6"));
        let users = vec![
            target_user("t1", Some("1"), "ann.lee@x.example", "Agent"),
            target_user("t2", None, "bo.ek@x.example", "Agent"),
            target_user("t4", Some("4"), "di.ro@x.example", "Agent"),
            target_user("t5", Some("5"), "old.user@x.example", "Agent"),
            foreign,
        ];
        let group = CurrentGroup {
            id: "g1".into(),
            display_name: "Support Tier 1".into(),
            members: ["t2".to_owned()].into(),
            version: None,
        };
        CurrentState { users, groups: BTreeMap::from([(TargetGroupRef::Id("g1".into()), group)]) }
    }

    #[test]
    fn renders_every_kind_of_change() {
        insta::assert_snapshot!(render_text(&realistic_plan()));
    }

    #[test]
    fn large_membership_changes_are_counted_and_folded() {
        let member = |i: usize| crate::plan::Member { key: format!("u{i:03}@x"), id: Some(format!("t{i}")) };
        let change = GroupChange {
            name: "Big".into(),
            target_id: "g".into(),
            display_name: "Big".into(),
            precondition: crate::plan::Precondition::Absent,
            method: crate::manifest::model::MembershipMethod::Patch,
            members_per_operation: 100,
            members_per_request: None,
            create: false,
            add: (0..60).map(member).collect(),
            remove: (60..62).map(member).collect(),
            members: Vec::new(),
            members_before: 62,
        };
        let text = render_text(&Plan { groups: vec![change], ..Plan::default() });
        assert!(text.contains("# group \"Big\" membership will change: 60 to add, 2 to remove"), "{text}");
        assert_eq!(text.matches("+ member").count(), 50);
        assert!(text.contains("# ... and 10 more to add"), "{text}");
        assert_eq!(text.matches("- member").count(), 2);
    }

    #[test]
    fn colours_markers_only() {
        let text = render_text(&realistic_plan());
        let coloured = colorize(&text);
        assert!(coloured.contains("\u{1b}[32m+\u{1b}[0m user"), "{coloured}");
        assert!(coloured.contains("\u{1b}[33m~\u{1b}[0m title"), "{coloured}");
        let plain: String = anstream_strip(&coloured);
        assert_eq!(plain, text, "removing the colours gives the plain text back");
    }

    fn anstream_strip(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find('\u{1b}') {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('m').map_or(rest.len(), |e| start + e + 1);
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn renders_no_changes() {
        assert_eq!(render_text(&Plan::default()), "No changes. The target matches the manifest.\n");
    }
}
