//! The plan as Markdown for a pull-request comment: a summary table, then one ```diff block per
//! changed resource (built with `similar`), long plans folded in `<details>`, and never longer
//! than a comment may be.

use std::fmt::Write;

use similar::{ChangeTag, TextDiff};

use super::text::{MAX_MEMBERS_SHOWN, describe_user, quoted};
use crate::plan::{Action, AttributeChange, GroupChange, Plan, UserChange};

/// More resources than this and their blocks are folded.
const FOLD_AFTER: usize = 10;

/// GitHub refuses comments over 65,536 characters; stop adding resources well before.
const MAX_CHARS: usize = 60_000;

/// Renders the whole plan. Deterministic, like the text.
pub fn render_markdown(plan: &Plan) -> String {
    let mut out = String::from("### scimform plan\n\n");
    let s = plan.summary();
    if plan.has_changes() {
        let _ = writeln!(out, "**{s}**\n");
        out.push_str("| Change | Count |\n| --- | ---: |\n");
        for (label, count) in [
            ("Create", s.create),
            ("Update", s.update),
            ("Adopt", s.adopt),
            ("Disable", s.disable),
            ("Delete", s.delete),
            ("Groups", s.groups),
        ] {
            let _ = writeln!(out, "| {label} | {count} |");
        }
        out.push('\n');
    } else {
        out.push_str("**No changes.** The target matches the manifest.\n\n");
    }
    if let Some(blocked) = &plan.blocked {
        let _ = writeln!(
            out,
            "> [!CAUTION]\n> **This plan is blocked:** {}. `apply` refuses it unless `{}` (or more) is given.\n",
            blocked.reason(),
            blocked.allow_flags()
        );
    }

    let blocks = resource_blocks(plan);
    let fold = blocks.len() > FOLD_AFTER;
    if fold {
        let _ = writeln!(out, "<details><summary>Show {} resource changes</summary>\n", blocks.len());
    }
    let mut shown = 0;
    for block in &blocks {
        if out.len() + block.len() > MAX_CHARS {
            break;
        }
        out.push_str(block);
        shown += 1;
    }
    if shown < blocks.len() {
        let _ = writeln!(
            out,
            "_… and {} more resource changes, not shown to keep this comment within GitHub's limit; the job log and the plan file have them all._\n",
            blocks.len() - shown
        );
    }
    if fold {
        out.push_str("</details>\n\n");
    }

    if !plan.conflicts.is_empty() {
        out.push_str("**Conflicts** (left untouched):\n\n");
        for conflict in &plan.conflicts {
            let _ = writeln!(
                out,
                "- user `{}` (id `{}`): {}",
                code(&conflict.key),
                code(&conflict.target_id),
                conflict.message
            );
        }
        out.push('\n');
    }
    if !plan.warnings.is_empty() {
        out.push_str("**Warnings**\n\n");
        for warning in &plan.warnings {
            let _ = writeln!(out, "- {warning}");
        }
        out.push('\n');
    }
    // One final newline, however the plan ended.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Backticks inside inline code would end it early.
fn code(text: &str) -> String {
    text.replace('`', "'")
}

/// One heading and diff block per resource, in apply order (as the text shows them).
fn resource_blocks(plan: &Plan) -> Vec<String> {
    let last = |c: &&UserChange| c.is_deprovision();
    let mut blocks: Vec<String> = plan.users.iter().filter(|c| !last(c)).map(user).collect();
    blocks.extend(plan.groups.iter().map(group));
    blocks.extend(plan.users.iter().filter(last).map(user));
    blocks
}

fn user(change: &UserChange) -> String {
    let mut before = String::new();
    let mut after = String::new();
    if change.action == Action::Delete {
        let _ = writeln!(before, "user {}", quoted(&change.key));
    }
    for c in &change.changes {
        if let Some(set) = &c.set {
            for diff in set.differences(c.before.as_deref(), c.after.as_ref()) {
                let label = set.label(&c.path, &diff.name);
                if let Some(level) = diff.before {
                    let _ = writeln!(before, "{}", set.entry(&label, level));
                }
                if let Some(level) = diff.after {
                    let _ = writeln!(after, "{}", set.entry(&label, level));
                }
            }
            continue;
        }
        line(&mut before, c, c.before.as_deref());
        if let Some(key) = &c.reference {
            let _ = writeln!(after, "{} = (known after apply: the id of user {})", c.path, quoted(key));
        }
        line(&mut after, c, c.after.as_ref());
    }
    format!("#### user `{}` {}\n\n{}\n", code(&change.key), describe_user(change).0, diff_block(&before, &after))
}

fn line(out: &mut String, change: &AttributeChange, value: Option<&serde_json::Value>) {
    if let Some(value) = value {
        let _ = writeln!(out, "{} = {value}", change.path);
    }
}

fn group(change: &GroupChange) -> String {
    let mut before = String::new();
    let mut after = String::new();
    for member in change.remove.iter().take(MAX_MEMBERS_SHOWN) {
        let _ = writeln!(before, "member {}", quoted(&member.key));
    }
    for member in change.add.iter().take(MAX_MEMBERS_SHOWN) {
        let known = if member.id.is_none() { " (known after apply)" } else { "" };
        let _ = writeln!(after, "member {}{known}", quoted(&member.key));
    }
    let (added, removed) = (change.add.len(), change.remove.len());
    let what = if change.create {
        format!("will be created with {added} member(s)")
    } else {
        format!("membership will change: {added} to add, {removed} to remove")
    };
    let mut text = format!("#### group `{}` {what}\n\n", code(&change.name));
    if !change.display_name.is_empty() && change.display_name != change.name {
        let _ = writeln!(text, "Target group `{}` (id `{}`).\n", code(&change.display_name), code(&change.target_id));
    }
    text.push_str(&diff_block(&before, &after));
    let hidden = added.saturating_sub(MAX_MEMBERS_SHOWN) + removed.saturating_sub(MAX_MEMBERS_SHOWN);
    if hidden > 0 {
        let _ = writeln!(text, "_… and {hidden} more member changes._");
    }
    text.push('\n');
    text
}

/// A fenced diff of two line lists, as `similar` sees it.
fn diff_block(before: &str, after: &str) -> String {
    let mut text = String::from("```diff\n");
    for change in TextDiff::from_lines(before, after).iter_all_changes() {
        let sign = match change.tag() {
            ChangeTag::Delete => '-',
            ChangeTag::Insert => '+',
            ChangeTag::Equal => ' ',
        };
        let _ = write!(text, "{sign} {}", change.value());
        if change.missing_newline() {
            text.push('\n');
        }
    }
    text.push_str("```\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::render::text::tests::realistic_plan;

    #[test]
    fn renders_a_realistic_plan() {
        insta::assert_snapshot!(render_markdown(&realistic_plan()));
    }

    #[test]
    fn folds_long_plans_and_stays_within_a_comment() {
        let plan = realistic_plan();
        let template = plan.users.iter().find(|u| u.action == Action::Update).unwrap().clone();
        let mut big = Plan::default();
        for i in 0..3000 {
            let mut change = template.clone();
            change.key = format!("user{i:05}@x.example");
            big.users.push(change);
        }
        let text = render_markdown(&big);
        assert!(text.contains("<details><summary>Show 3000 resource changes</summary>"), "{}", &text[..400]);
        assert!(text.len() < 65_536, "{} characters", text.len());
        assert!(text.contains("more resource changes, not shown"));
        assert!(text.trim_end().ends_with("</details>"));

        let small = render_markdown(&realistic_plan());
        assert!(!small.contains("<details>"));
    }

    #[test]
    fn renders_no_changes() {
        assert_eq!(
            render_markdown(&Plan::default()),
            "### scimform plan\n\n**No changes.** The target matches the manifest.\n"
        );
    }
}
