//! `scimform state list | show | forget`: what the state remembers for a manifest, read as `plan`
//! reads it: the target's users and groups as the last run left them, and how far each source
//! was read; `forget` (under the run lock) makes scimform stop managing one user or group.

use std::fmt::Write as _;

use anyhow::bail;

use super::{Console, RunState};
use crate::cli::{StateCommand, StateForgetArgs, StateReadArgs};
use crate::exit::ExitStatus;
use crate::plan::focus::Selector;
use crate::settings::StateSettings;

pub async fn run(command: &StateCommand, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let (read, resource) = match command {
        StateCommand::List(read) => (read, None),
        StateCommand::Show(show) => (&show.read, Some(&show.resource)),
        StateCommand::Forget(forget) => return self::forget(forget, console).await,
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
            let mut names: Vec<(String, &str)> =
                users.iter().map(|u| (u.user_name().unwrap_or("?").to_owned(), u.id.as_str())).collect();
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
            let forgotten = state.as_ref().map(RunState::forgotten).cloned().unwrap_or_default();
            if !forgotten.is_empty() {
                let _ =
                    writeln!(out, "forgotten ({}), left as they are:", forgotten.users.len() + forgotten.groups.len());
                for (id, name) in &forgotten.users {
                    let _ = writeln!(out, "  user:{name} (id {id})");
                }
                for (id, name) in &forgotten.groups {
                    let _ = writeln!(out, "  group:{name} (id {id})");
                }
            }
            let _ = writeln!(out, "sources ({}):", snapshot.sources.len());
            for (name, cache) in &snapshot.sources {
                let _ =
                    writeln!(out, "  {name}: {} user record(s), {} group(s)", cache.users.len(), cache.groups.len());
            }
        }
        Some(Selector::User(key)) => {
            let user = target
                .and_then(|t| t.users.iter().find(|u| u.user_name().is_some_and(|n| n.eq_ignore_ascii_case(key))));
            let Some(user) = user else { bail!("the state remembers no user `{key}`") };
            out = serde_json::to_string_pretty(&user.to_resource())? + "\n";
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
    let mut state = RunState::open_for(&settings, &manifest, file, console.err, false).await?;
    if let Some(state) = &mut state {
        state.load().await?;
    }
    Ok(state)
}

/// `state forget [--undo] RESOURCE`: records (or drops) a user or group the state remembers as
/// one scimform leaves alone, under the run lock so no apply runs meanwhile.
async fn forget(args: &StateForgetArgs, console: &mut Console<'_>) -> anyhow::Result<ExitStatus> {
    let file = &args.read.manifest.file;
    let manifest = crate::manifest::load(file)?;
    let settings = StateSettings::new(&args.read.state, file);
    if settings.location.is_none() {
        bail!("`state forget` records what to leave alone in the state; it cannot run with `--no-state`");
    }
    // A PostgreSQL state's advisory lock, taken as it opens, is the run lock there.
    let _lock = if settings.is_postgres() {
        None
    } else {
        let lock = crate::settings::lock_beside(file);
        Some(crate::lock::RunLock::acquire_within(&lock, console.err, settings.lock_wait).await?)
    };
    let Some(mut state) = RunState::open_for(&settings, &manifest, file, console.err, false).await? else {
        bail!("there is no state for `{}` yet: run `scimform apply -f {0}` first", file.display());
    };
    state.load().await?;
    let mut forgotten = state.forgotten().clone();
    let said = if args.undo {
        let before = forgotten.clone();
        match &args.resource {
            Selector::User(key) => forgotten.users.retain(|id, name| !(name.eq_ignore_ascii_case(key) || id == key)),
            Selector::Group(name) => forgotten.groups.retain(|id, display| !(display == name || id == name)),
        }
        if forgotten == before {
            bail!("`{}` is not forgotten; `scimform state list -f {}` lists what is", args.resource, file.display());
        }
        format!("scimform manages {} again from the next run on.", args.resource)
    } else {
        let Some(target) = state.target() else {
            bail!(
                "the state does not remember the target now (after `--refresh`, a saved plan or a failed write); run `scimform apply -f {0}` (or `apply -f {0} --refresh-only`) so it does, then forget",
                file.display()
            );
        };
        let (id, name) = match &args.resource {
            Selector::User(key) => {
                let user = target
                    .users
                    .iter()
                    .find(|u| u.id == *key || u.user_name().is_some_and(|n| n.eq_ignore_ascii_case(key)));
                let Some(user) = user else { bail!("the state remembers no user `{key}`") };
                let name = user.user_name().unwrap_or(key).to_owned();
                forgotten.users.insert(user.id.clone(), name.clone());
                (user.id.clone(), name)
            }
            Selector::Group(name) => {
                let group = target.groups.values().find(|g| g.display_name == *name || g.id == *name);
                let Some(group) = group else { bail!("the state remembers no group `{name}`") };
                forgotten.groups.insert(group.id.clone(), group.display_name.clone());
                (group.id.clone(), group.display_name.clone())
            }
        };
        let kind = if matches!(args.resource, Selector::User(_)) { "user" } else { "group" };
        format!(
            "scimform leaves {kind} `{name}` (id {id}) as it is from the next run on; `scimform state forget -f {} --undo {kind}:{name}` manages it again.",
            file.display()
        )
    };
    state.save_forgotten(forgotten).await?;
    writeln!(console.out, "{said}")?;
    Ok(ExitStatus::Success)
}
