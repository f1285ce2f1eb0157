//! `scimform state list | show`: what the state remembers for a manifest, read as `plan` reads
//! it (never written): the target's users and groups as the last run left them, and how far each
//! source was read.

use std::fmt::Write as _;

use anyhow::bail;
use serde_json::Value;

use super::{Console, RunState};
use crate::cli::{StateCommand, StateReadArgs};
use crate::exit::ExitStatus;
use crate::plan::focus::Selector;
use crate::settings::StateSettings;

pub async fn run(command: &StateCommand, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let (read, resource) = match command {
        StateCommand::List(read) => (read, None),
        StateCommand::Show(show) => (&show.read, Some(&show.resource)),
    };
    let state = open(read, console).await?;
    let Some(snapshot) = state.as_ref().and_then(RunState::snapshot) else {
        bail!(
            "the state holds nothing for `{}` (no run applied it yet, or another manifest's)",
            read.manifest.file.display()
        );
    };
    let target = snapshot.target.as_ref();
    let mut out = String::new();
    match resource {
        None => {
            let users = target.map(|t| t.users.as_slice()).unwrap_or_default();
            let _ = writeln!(out, "users ({}):", users.len());
            let mut names: Vec<(String, &str)> = users
                .iter()
                .map(|u| (u.resource.get("userName").and_then(Value::as_str).unwrap_or("?").to_owned(), u.id.as_str()))
                .collect();
            names.sort();
            for (name, id) in names {
                let _ = writeln!(out, "  user:{name} (id {id})");
            }
            let groups = target.map(|t| t.groups.values().collect::<Vec<_>>()).unwrap_or_default();
            let _ = writeln!(out, "groups ({}):", groups.len());
            for group in groups {
                let _ =
                    writeln!(out, "  group:{} (id {}, {} members)", group.display_name, group.id, group.members.len());
            }
            if target.is_none() {
                out.push_str("(no target remembered: the next run reads it in full)\n");
            }
            let _ = writeln!(out, "sources ({}):", snapshot.sources.len());
            for (name, cache) in &snapshot.sources {
                let _ =
                    writeln!(out, "  {name}: {} user record(s), {} group(s)", cache.users.len(), cache.groups.len());
            }
        }
        Some(Selector::User(key)) => {
            let user = target.and_then(|t| {
                t.users.iter().find(|u| {
                    u.resource.get("userName").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(key))
                })
            });
            let Some(user) = user else { bail!("the state remembers no user `{key}`") };
            out = serde_json::to_string_pretty(&user.resource)? + "\n";
        }
        Some(Selector::Group(name)) => {
            let group = target.and_then(|t| t.groups.values().find(|g| g.display_name == *name || g.id == *name));
            let Some(group) = group else { bail!("the state remembers no group `{name}`") };
            let members: Vec<&String> = group.members.iter().collect();
            let shown = serde_json::json!({"id": group.id, "displayName": group.display_name, "members": members, "version": group.version});
            out = serde_json::to_string_pretty(&shown)? + "\n";
        }
    }
    console.out.write_all(out.as_bytes())?;
    Ok(ExitStatus::Success)
}

/// The manifest's state as `plan` opens it: read, never created.
async fn open(read: &StateReadArgs, console: &mut Console<'_>) -> anyhow::Result<Option<RunState>> {
    let file = &read.manifest.file;
    let manifest = crate::manifest::load(file)?;
    let settings = StateSettings::new(&read.state, file);
    RunState::open_for(&settings, &manifest, file, console.err, false).await
}
