//! `scimform explain -f FILE USER_KEY`: one user, from the source record through the mapping and
//! the target's copy to the operations a plan would send, for debugging a mapping without
//! reading code. Reads only that user from the target (by its match value and ownership
//! marker), not every user.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use super::{Console, read_desired, sources_for};
use crate::desired::{DesiredState, DesiredUser, match_key};
use crate::exit::ExitStatus;
use crate::manifest::Manifest;
use crate::manifest::model::OnEmpty;
use crate::mapping::{Mapping, evaluate};
use crate::plan::render::render_text;
use crate::plan::requests::{group_request, user_request};
use crate::record::{AttrValue, SourceRecord};
use crate::service::{CurrentState, CurrentUser, TargetReader};

pub async fn run(file: &Path, user: &str, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let manifest = crate::manifest::load(file)?;
    let client = super::client_for(&manifest)?;
    let key = match_key(user);
    // Problems in the desired state are what one explains a user to find: shown, not fatal.
    let now = Some(crate::settings::run_clock()?);
    let mut sources = sources_for(&manifest, None)?;
    let manifest =
        crate::pipeline::expand_group_patterns(&manifest, &mut sources, console.progress).await?.into_owned();
    let (records, desired) = read_desired(&manifest, &mut sources, console.progress, now).await?;
    let want = desired.users.get(&key);
    // The record: the one the desired user came from, or one whose match value is the key (its
    // other mappings may have failed).
    let matches_key = |r: &&SourceRecord| {
        manifest
            .users
            .match_mapping()
            .and_then(|m| evaluate(m, r).ok().flatten())
            .and_then(|v| v.as_str().map(match_key))
            == Some(key.clone())
    };
    let record = match want {
        Some(w) => records.iter().find(|r| r.id == w.source_id),
        None => records.iter().find(matches_key),
    };
    let mut out = String::new();
    let _ = writeln!(out, "User {}", serde_json::to_string(&key)?);

    write_record(&mut out, &manifest, record)?;
    if let Some(record) = record {
        write_mappings(&mut out, &manifest, record, now);
    }
    write_desired(&mut out, &manifest, &desired, want, record, &key)?;

    // The target's copy: by match value and by marker, so a renamed user is found too.
    let mut found: Vec<CurrentUser> = Vec::new();
    let match_attribute = manifest.users.match_path.to_string();
    let mut lookups = vec![(
        match_attribute.clone(),
        want.and_then(|w| w.attributes.get(&manifest.users.match_path))
            .and_then(Value::as_str)
            .unwrap_or(&key)
            .to_owned(),
    )];
    // Every other match key, as the planner tries them: a value path (`emails[type eq "work"]
    // .value`) is looked up by its sub-attribute (`emails.value`, which any element matches),
    // the element checked here; a key the service cannot filter on is skipped.
    for path in manifest.users.match_paths.iter().skip(1) {
        let Some(value) = want.and_then(|w| w.attributes.get(path)).and_then(Value::as_str) else { continue };
        let Ok(resources) = client.find("/Users", &path.filter_attribute(), value).await else { continue };
        let same = |user: &CurrentUser| user.get(path).and_then(Value::as_str).map(match_key) == Some(match_key(value));
        add_new(&mut found, resources.into_iter().filter_map(CurrentUser::from_resource).filter(same));
    }
    if let Some(marker) = want.and_then(|w| w.external_id.clone()) {
        lookups.push(("externalId".into(), marker));
    }
    for (attribute, value) in &lookups {
        let resources =
            client.find("/Users", attribute, value).await.context("cannot read the user from the target")?;
        add_new(&mut found, resources.into_iter().filter_map(CurrentUser::from_resource));
    }
    let managed = manifest.users.managed_paths();
    if found.is_empty() {
        out.push_str("\nTarget: no user with this key or marker.\n");
    }
    for user in &found {
        let _ = writeln!(
            out,
            "\nTarget user (id {:?}{}), managed attributes:",
            user.id,
            user.version.as_deref().map(|v| format!(", version {v}")).unwrap_or_default()
        );
        for path in &managed {
            let value = user.get(path).map_or_else(|| "(none)".to_owned(), ToString::to_string);
            let _ = writeln!(out, "  {path} = {value}");
        }
    }

    // The plan for this one user: its own desired state against its own target copy, and the
    // paired groups, of which only this user's membership is kept.
    let refs: Vec<_> = manifest.groups.iter().map(|p| p.to.clone()).collect();
    let creatable: Vec<_> = manifest.groups.iter().filter(|p| p.create).map(|p| p.to.clone()).collect();
    // The users this one refers to (its manager) are read too, so a reference resolves.
    let mut only_users: std::collections::BTreeMap<String, crate::desired::DesiredUser> =
        want.map(|w| (key.clone(), w.clone())).into_iter().collect();
    for referenced in want.iter().flat_map(|w| w.references.values()) {
        let Some(other) = desired.users.get(referenced) else { continue };
        let value = other.attributes.get(&manifest.users.match_path).and_then(Value::as_str).unwrap_or(referenced);
        let resources =
            client.find("/Users", &match_attribute, value).await.context("cannot read the user from the target")?;
        found.extend(resources.into_iter().filter_map(CurrentUser::from_resource));
        only_users.insert(referenced.clone(), other.clone());
    }
    let current = CurrentState {
        users: found,
        groups: client.groups(&refs, &creatable).await.context("cannot read the paired target groups")?,
    };
    let only = DesiredState {
        users: only_users,
        groups: desired.groups.clone(),
        out_of_scope: desired
            .out_of_scope
            .iter()
            .filter(|(k, _)| **k == key)
            .map(|(k, o)| (k.clone(), o.clone()))
            .collect(),
        scoped_by: desired.scoped_by.clone(),
        ..DesiredState::default()
    };
    let mut plan = crate::plan::plan(&manifest.users, &only, &current);
    plan.users.retain(|u| u.key == key);
    let ids: Vec<Option<String>> = plan.users.iter().map(|u| u.target_id.clone()).collect();
    for group in &mut plan.groups {
        group.add.retain(|m| m.key == key);
        group.remove.retain(|m| m.key == key || ids.contains(&m.id));
    }
    plan.groups.retain(|g| !g.add.is_empty() || !g.remove.is_empty());
    plan.warnings.retain(|w| w.contains(&format!("`{key}`")));
    plan.blocked = None;

    out.push_str("\nPlan for this user:\n\n");
    out.push_str(&render_text(&plan));
    out.push_str(&crate::plan::render::text::render_warnings(&plan));
    if plan.has_changes() {
        out.push_str("\nRequests:\n");
        let requests =
            plan.users.iter().map(user_request).chain(plan.groups.iter().map(|g| group_request(g, |_| None).0));
        for request in requests {
            let body = request.body.as_ref().map(serde_json::to_string_pretty).transpose()?.unwrap_or_default();
            let _ = writeln!(out, "\n{request}\n{body}");
        }
    }
    console.out.write_all(console.paint(&out).as_bytes())?;
    Ok(ExitStatus::Success)
}

/// The user's source record, attribute by attribute.
fn write_record(out: &mut String, manifest: &Manifest, record: Option<&SourceRecord>) -> anyhow::Result<()> {
    out.push_str("\nSource record");
    match record {
        Some(record) => {
            let _ = writeln!(
                out,
                " (source `{}`, id {:?}{}):",
                manifest.users.source,
                record.id,
                if record.disabled { ", disabled" } else { "" }
            );
            for (name, value) in record.attributes() {
                let shown = match value {
                    AttrValue::Text(text) => serde_json::to_string(text)?,
                    AttrValue::Bool(b) => b.to_string(),
                    AttrValue::List(list) => serde_json::to_string(list)?,
                };
                let _ = writeln!(out, "  {name} = {shown}");
            }
        }
        None => {
            let _ = writeln!(out, ": none. No record of source `{}` maps to this key.", manifest.users.source);
        }
    }

    Ok(())
}

/// Each mapping: what it is, the values it read, every step and the result or the error.
fn write_mappings(out: &mut String, manifest: &Manifest, record: &SourceRecord, now: Option<jiff::Timestamp>) {
    out.push_str("\nMappings (each attribute: its mapping, the values it read and each step):\n");
    let mut mappings: Vec<(String, &Mapping, bool)> = manifest
        .users
        .attributes
        .iter()
        .map(|a| (a.path.to_string(), &a.mapping, a.on_empty == OnEmpty::Remove))
        .collect();
    if let Some(marker) = &manifest.users.external_id {
        mappings.push(("externalId".into(), marker, false));
    }
    mappings.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, mapping, remove_when_empty) in mappings {
        let (result, steps) = crate::mapping::eval::explain(mapping, record, now);
        let shown = match result {
            Ok(Some(value)) => value.to_string(),
            Ok(None) if remove_when_empty => "(empty: removed from the target, `on_empty: remove`)".into(),
            Ok(None) => "(empty: not sent)".into(),
            Err(error) => format!("error: {error}"),
        };
        let _ = writeln!(out, "  {path} = {shown}\n      <- {}", describe(mapping));
        for step in steps {
            let _ = writeln!(out, "         {step}");
        }
    }
}

/// Problems of the user's record, and its desired state.
fn write_desired(
    out: &mut String,
    manifest: &Manifest,
    desired: &DesiredState,
    want: Option<&DesiredUser>,
    record: Option<&SourceRecord>,
    key: &str,
) -> anyhow::Result<()> {
    let problems: Vec<&String> =
        desired.errors.iter().filter(|e| record.is_some_and(|r| e.contains(&format!("`{}`", r.id)))).collect();
    if !problems.is_empty() {
        out.push_str("\nProblems (a plan refuses to run while any source record has one):\n");
        for problem in problems {
            let _ = writeln!(out, "  - {problem}");
        }
    }

    out.push_str("\nDesired state:\n");
    if let Some(out_of_scope) = desired.out_of_scope.get(key) {
        let _ = writeln!(out, "  out of scope: {}", out_of_scope.why);
    }
    if let Some(want) = want {
        let mut lines: Vec<(String, String)> = want
            .attributes
            .iter()
            .map(|(p, v)| {
                let when = if manifest.users.is_create_only(p) { " (on create only)" } else { "" };
                (p.to_string(), format!("{v}{when}"))
            })
            .collect();
        if let Some(marker) = &want.external_id {
            lines.push(("externalId".into(), serde_json::to_string(marker)?));
        }
        lines.push(("active".into(), want.active.to_string()));
        lines.extend(want.removals.iter().map(|p| (p.to_string(), "(removed: empty in the source)".into())));
        lines.sort();
        for (path, value) in lines {
            let _ = writeln!(out, "  {path} = {value}");
        }
        let groups: Vec<&str> =
            desired.groups.iter().filter(|g| g.members.contains(key)).map(|g| g.pairing.as_str()).collect();
        let _ = writeln!(
            out,
            "  member of pairings: {}",
            if groups.is_empty() { "none".into() } else { groups.join(", ") }
        );
    } else {
        out.push_str(
            "  none: a target user with this key is only ever deprovisioned, and only if it carries our marker\n",
        );
    }

    Ok(())
}

/// A mapping as the manifest writes it.
fn describe(mapping: &Mapping) -> String {
    match mapping {
        Mapping::Attribute(name) => format!("source attribute `{name}`"),
        Mapping::Constant(value) => format!("constant {value}"),
        Mapping::Template(template) => format!("template {}", Value::String(template.to_string())),
        Mapping::Reference(name) => format!("the user `{name}` refers to"),
    }
}

/// Adds the users `found` does not hold yet (by id).
fn add_new(found: &mut Vec<CurrentUser>, users: impl Iterator<Item = CurrentUser>) {
    for user in users {
        if !found.iter().any(|f| f.id == user.id) {
            found.push(user);
        }
    }
}
