//! The sources' side of a run: the adapters opened with what the last run left, group patterns
//! expanded, and every read the manifest asks of them, each source's in order and the sources
//! at the same time, made into the desired state.

use std::collections::BTreeMap;

use anyhow::{Context, bail};

use crate::desired::scope::ScopeGroups;
use crate::desired::{self, DesiredState};
use crate::manifest::Manifest;
use crate::manifest::model::{GroupPairing, GroupSelector};
use crate::progress::Progress;
use crate::source::{AnySource, Source, SourceGroup, SourceRecord};
use crate::state::RunState;

/// The adapters a manifest's sources describe, each opened with what the last run left when
/// the run keeps state.
pub fn sources_for(
    manifest: &Manifest,
    mut state: Option<&mut RunState>,
) -> anyhow::Result<BTreeMap<String, AnySource>> {
    let mut sources = BTreeMap::new();
    for (name, config) in &manifest.sources {
        let wanted = manifest.attributes_read_from(name);
        let resume = state.as_deref_mut().map(|s| s.resume(name)).unwrap_or_default();
        let scope = if manifest.scope_read_by_source() && *name == manifest.users.source {
            manifest.users.scope.member_of.as_slice()
        } else {
            &[]
        };
        sources.insert(name.clone(), AnySource::open(name, config, &wanted, resume, scope)?);
    }
    Ok(sources)
}

/// Reads the sources and builds the desired state, problems included (see `DesiredState::errors`);
/// returns the user records too.
pub async fn read_desired(
    manifest: &Manifest,
    sources: &mut BTreeMap<String, AnySource>,
    progress: Progress,
    now: Option<jiff::Timestamp>,
) -> anyhow::Result<(std::sync::Arc<Vec<SourceRecord>>, DesiredState)> {
    // Each source reads what the manifest asks of it in order (its users, then its groups); the
    // sources read at the same time (AD users while Entra's groups are read).
    let read_apart = if manifest.scope_read_by_source() { &[][..] } else { manifest.users.scope.member_of.as_slice() };
    let mut wanted: Vec<(&str, Wanted)> = vec![(manifest.users.source.as_str(), Wanted::Users)];
    wanted.extend(manifest.groups.iter().enumerate().map(|(i, p)| (p.source.as_str(), Wanted::Pairing(i))));
    for (set, rules) in manifest.users.sets.iter().enumerate() {
        wanted.extend(rules.groups.iter().enumerate().map(|(rule, r)| (r.source.as_str(), Wanted::SetRule(set, rule))));
    }
    wanted.extend(read_apart.iter().enumerate().map(|(i, g)| (g.source.as_str(), Wanted::Scope(i))));
    if let Some((name, _)) = wanted.iter().find(|(name, _)| !sources.contains_key(*name)) {
        bail!("source `{name}` is not configured");
    }
    let tasks = sources.iter_mut().map(|(name, source)| {
        let mine: Vec<Wanted> = wanted.iter().filter(|(n, _)| *n == name).map(|(_, w)| *w).collect();
        async move { read_source(manifest, source, &mine, progress).await }
    });
    let mut records = None;
    let mut groups: Vec<Option<(GroupPairing, SourceGroup)>> = vec![None; manifest.groups.len()];
    let mut set_groups: Vec<Vec<Option<SourceGroup>>> =
        manifest.users.sets.iter().map(|set| vec![None; set.groups.len()]).collect();
    let mut scope_groups: Vec<Option<SourceGroup>> = vec![None; read_apart.len()];
    for (want, got) in futures_util::future::try_join_all(tasks).await?.into_iter().flatten() {
        match (want, got) {
            (Wanted::Users, Read::Users(users)) => records = Some(users),
            (Wanted::Pairing(i), Read::Group(group)) => groups[i] = Some((manifest.groups[i].clone(), group)),
            (Wanted::SetRule(set, rule), Read::Group(group)) => set_groups[set][rule] = Some(group),
            (Wanted::Scope(i), Read::Group(group)) => scope_groups[i] = Some(group),
            _ => {}
        }
    }
    let records = records.with_context(|| format!("source `{}` read no users", manifest.users.source))?;
    let groups: Vec<(GroupPairing, SourceGroup)> = groups.into_iter().flatten().collect();
    let set_groups: Vec<Vec<SourceGroup>> = set_groups.into_iter().map(|s| s.into_iter().flatten().collect()).collect();
    let scope_groups: Vec<SourceGroup> = scope_groups.into_iter().flatten().collect();
    let scope_groups = if manifest.scope_read_by_source() {
        let names: Vec<String> = manifest.users.scope.member_of.iter().map(|g| g.group.name().to_owned()).collect();
        ScopeGroups::BySource(crate::desired::scope::describe_groups(&names))
    } else if scope_groups.is_empty() {
        ScopeGroups::None
    } else {
        ScopeGroups::Read(scope_groups)
    };
    let desired = desired::build_with_sets(&manifest.users, &records, &groups, &set_groups, &scope_groups, now);
    Ok((records, desired))
}

/// One read the manifest asks of a source.
#[derive(Debug, Clone, Copy)]
enum Wanted {
    Users,
    Pairing(usize),
    SetRule(usize, usize),
    Scope(usize),
}

/// What one read returned.
enum Read {
    Users(std::sync::Arc<Vec<SourceRecord>>),
    Group(SourceGroup),
}

/// Reads what the manifest asks of `source`: its users first, then its groups (a source reads
/// several at once where it can).
async fn read_source(
    manifest: &Manifest,
    source: &mut AnySource,
    mine: &[Wanted],
    progress: Progress,
) -> anyhow::Result<Vec<(Wanted, Read)>> {
    let mut read = Vec::with_capacity(mine.len());
    if mine.iter().any(|w| matches!(w, Wanted::Users)) {
        let spinner = progress.spinner(format!("Reading users from source `{}`", manifest.users.source));
        read.push((Wanted::Users, Read::Users(source.users().await?)));
        spinner.finish_and_clear();
    }
    let groups: Vec<(Wanted, (GroupSelector, bool), String)> = mine
        .iter()
        .filter_map(|want| {
            group_wanted(manifest, *want).map(|(selector, nested, what)| (*want, (selector.clone(), nested), what))
        })
        .collect();
    if groups.is_empty() {
        return Ok(read);
    }
    let spinner = progress.spinner(match groups.as_slice() {
        [(_, _, what)] => format!("Reading {what}"),
        many => format!("Reading {} groups", many.len()),
    });
    let selectors: Vec<(GroupSelector, bool)> = groups.iter().map(|(_, selector, _)| selector.clone()).collect();
    let results = source.groups(&selectors).await?;
    spinner.finish_and_clear();
    for ((want, _, what), result) in groups.into_iter().zip(results) {
        read.push((want, Read::Group(result.with_context(|| format!("cannot read {what}"))?)));
    }
    Ok(read)
}

/// The group a read asks for, whether nested, and how to name it.
fn group_wanted(manifest: &Manifest, want: Wanted) -> Option<(&GroupSelector, bool, String)> {
    Some(match want {
        Wanted::Users => return None,
        Wanted::Pairing(i) => {
            let pairing = &manifest.groups[i];
            (&pairing.from, pairing.nested, format!("the source group of pairing `{}`", pairing.name))
        }
        Wanted::SetRule(set, rule) => {
            let (set, rule) = (&manifest.users.sets[set], &manifest.users.sets[set].groups[rule]);
            (&rule.group, rule.nested, format!("the source group for `{}` entry `{}`", set.path, rule.name))
        }
        Wanted::Scope(i) => {
            let scope = &manifest.users.scope.member_of[i];
            (&scope.group, scope.nested, format!("`users.scope.member_of[{i}]`, {}", scope.group))
        }
    })
}

/// The manifest with each pairing pattern (`from.name_matches`) turned into the pairings its
/// matching source groups make, each named and targeted by its own match. The source is asked
/// for candidates by the pattern's literal prefix where it can; the pattern decides.
pub async fn expand_group_patterns<'a>(
    manifest: &'a Manifest,
    sources: &mut BTreeMap<String, AnySource>,
    progress: Progress,
) -> anyhow::Result<std::borrow::Cow<'a, Manifest>> {
    if manifest.group_patterns.is_empty() {
        return Ok(std::borrow::Cow::Borrowed(manifest));
    }
    let mut expanded = manifest.clone();
    for pattern in &manifest.group_patterns {
        let spinner = progress
            .spinner(format!("Listing the groups of source `{}` that match `{}`", pattern.source, pattern.pattern));
        let prefix = pattern.literal_prefix();
        let mut candidates = source(sources, &pattern.source)?
            .group_names(prefix.as_deref())
            .await
            .with_context(|| format!("cannot list the groups pairing `{}` matches", pattern.name))?;
        spinner.finish_and_clear();
        candidates.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        for (id, name) in candidates {
            let Some(pairing) = pattern.pairing(&id, &name) else { continue };
            if expanded.groups.iter().any(|p| p.name == pairing.name) {
                bail!(
                    "pairing `{}` of pattern `{}` (source group `{name}`) is named like another pairing; name the pattern's pairings apart",
                    pairing.name,
                    pattern.name
                );
            }
            expanded.groups.push(pairing);
        }
    }
    Ok(std::borrow::Cow::Owned(expanded))
}

fn source<'a>(sources: &'a mut BTreeMap<String, AnySource>, name: &str) -> anyhow::Result<&'a mut AnySource> {
    sources.get_mut(name).with_context(|| format!("source `{name}` is not configured"))
}
