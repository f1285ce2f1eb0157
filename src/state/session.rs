//! The state as one run uses it: opened from the run's settings (the default beside the
//! manifest, or one named), the last run's snapshot handed to the sources and the planner, and
//! what the run leaves saved, writing no more than changed.
#![allow(clippy::disallowed_methods, reason = "the state file's place: whether it exists, moving a damaged one aside")]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{Clocks, Head, Settled, Snapshot, StateError, Store};
use crate::current::CurrentState;
use crate::manifest::Manifest;
use crate::plan::Clock;
use crate::settings::{StateSettings, is_postgres_url};
use crate::source::{AnySource, ReadKind, Resume, SourceCache, SourceRead};

/// What the sources that read incrementally got to in this run.
#[derive(Debug, Default)]
pub struct SourceReads {
    /// By source name: what the next run resumes from.
    pub caches: BTreeMap<String, SourceCache>,
    /// How each was read, for the user.
    pub kinds: Vec<(String, ReadKind)>,
    /// Some source's records differ from what the state holds (read in full, or changes read).
    pub records_changed: bool,
    /// By source name, what each read (`AnySource::fingerprint`); `None` when one cannot tell.
    pub fingerprints: Option<BTreeMap<String, String>>,
}

impl SourceReads {
    /// Finishes each source once it was read, collecting what the next run resumes from.
    pub fn collect(sources: BTreeMap<String, AnySource>) -> Self {
        let fingerprints = sources.iter().map(|(name, source)| Some((name.clone(), source.fingerprint()?))).collect();
        let mut reads = SourceReads { fingerprints, ..SourceReads::default() };
        for (name, source) in sources {
            let Some(SourceRead { cache, kind }) = source.finish() else { continue };
            reads.records_changed |= match &kind {
                ReadKind::Full { .. } => true,
                ReadKind::Incremental { changed, removed, .. } => changed + removed > 0,
            };
            reads.caches.insert(name.clone(), cache);
            reads.kinds.push((name.clone(), kind));
        }
        reads
    }

    /// One line per source read, for stderr.
    pub fn describe(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for (name, kind) in &self.kinds {
            writeln!(out, "Source `{name}` {kind}.")?;
        }
        Ok(())
    }
}

/// What a run leaves of the target in the state.
pub enum TargetUpdate {
    /// As the state remembers it, never loaded: the last run's plan stood (`Settled`).
    Kept,
    /// As the state remembered it (planned against it, nothing written): handed back.
    Unchanged(CurrentState),
    /// Read in full, or followed through the apply.
    Replace(CurrentState),
    /// Followed through an apply planned against the users as the state keeps them: only
    /// those `written` (by target id) differ from the rows saved.
    Written { current: CurrentState, written: std::collections::BTreeSet<String> },
    /// Not known exactly (a failed or stale write): the next run reads it in full.
    Forget,
}

/// The state a run works with: the store, and what the last run left for this manifest and
/// where it points (nothing after `--refresh`, in a new store, or for another manifest or
/// target: full reads).
pub struct RunState {
    store: Store,
    /// What the last run left for this manifest, in brief.
    head: Option<Head>,
    /// Its target and sources, once `load` read them.
    loaded: Option<Snapshot>,
    /// `loaded`'s target holds its groups only: its users are read as needed (`plan::delta`).
    users_spared: bool,
    /// Plan against the target as read now, not as remembered (a saved plan).
    in_full: bool,
    /// What the state keeps of each target user: the manifest's managed paths.
    managed: Vec<crate::scim::ScimPath>,
    /// The target's base URL, which the deprovision clocks belong to.
    target: String,
    /// When scimform disabled each user that is gone, as loaded and as the run leaves them.
    clocks_loaded: Clocks,
    clocks: Clocks,
    /// The pairings the group patterns made, as the last run that applied left them and as this
    /// run makes them (pairing name -> target group display name).
    pattern_pairings_loaded: BTreeMap<String, String>,
    pattern_pairings: BTreeMap<String, String>,
    /// What `state forget` took out of scimform's hands in this target.
    forgotten: crate::desired::Forgotten,
    /// How the target's changes are seen, as loaded and as the run leaves it.
    watch_loaded: crate::state::TargetWatch,
    watch: crate::state::TargetWatch,
    /// The state remembered a target when it was opened.
    target_known: bool,
    /// The watermarks the sources were resumed from, to tell whether they moved.
    resumed_from: BTreeMap<String, serde_json::Value>,
}

impl RunState {
    /// Opens the state a run's arguments name: `--state`, else the file beside the manifest
    /// (none with `--no-state`). The default that cannot be used (a read-only directory, say) is
    /// a warning and a run without state; a state asked for by name that cannot be used is an
    /// error. A state file that does not exist is made only when `create` (a run that will
    /// write it). A database keeps the states of several manifests, each under its path as given.
    pub async fn open_for(
        settings: &StateSettings,
        manifest: &Manifest,
        file: &Path,
        warn: &mut dyn Write,
        create: bool,
    ) -> anyhow::Result<Option<Self>> {
        let location = settings.location.clone();
        if !create
            && let Some(path) = location.as_deref().filter(|l| !is_postgres_url(l))
            && !state_file_exists(Path::new(path))
        {
            return Ok(None);
        }
        let wait = settings.lock_wait;
        if location.as_deref().is_some_and(is_postgres_url) {
            writeln!(warn, "State: PostgreSQL, this manifest's key `{}`.", state_key(manifest, file))?;
        }
        let damaged = |error: &anyhow::Error| error.downcast_ref::<StateError>().is_some_and(StateError::is_damaged);
        let refresh = settings.refresh;
        match Self::open(location.as_deref(), refresh, manifest, file, wait).await {
            // A damaged default state would cost a full read on every run, forever: `apply`
            // moves it aside, says where, and starts a fresh one.
            Err(error) if !settings.named && create && damaged(&error) => {
                let path = PathBuf::from(location.unwrap_or_default());
                let aside = move_aside(&path)?;
                writeln!(
                    warn,
                    "Warning: the state file `{}` cannot be read ({}); moved it aside to `{}` and started a fresh one: this run reads everything in full.",
                    path.display(),
                    one_line(&error),
                    aside.display()
                )?;
                Self::open(path.to_str(), refresh, manifest, file, wait).await
            }
            Err(error) if !settings.named && damaged(&error) => {
                writeln!(
                    warn,
                    "Warning: the state file cannot be read ({}); this run reads everything in full, and the next `apply` moves the file aside and starts a fresh one.",
                    one_line(&error)
                )?;
                Ok(None)
            }
            Err(error) if !settings.named => {
                writeln!(warn, "Warning: running without state: {}. Pass `--no-state` to silence this.", one_line(&error))?;
                Ok(None)
            }
            Err(error) if damaged(&error) => Err(error.context(format!(
                "the state named by `--state` (or SCIMFORM_STATE) cannot be read; move it aside (`mv {0} {0}.corrupt`) to start afresh with a full read",
                location.unwrap_or_default()
            ))),
            opened => opened,
        }
    }

    /// Opens the state at `location`, if any, waiting up to `lock_wait` for a PostgreSQL
    /// state's run lock.
    pub async fn open(
        location: Option<&str>,
        refresh: bool,
        manifest: &Manifest,
        file: &Path,
        lock_wait: std::time::Duration,
    ) -> anyhow::Result<Option<Self>> {
        let Some(location) = location else { return Ok(None) };
        let key = state_key(manifest, file);
        let mut store = Store::open_waiting(location, &key, lock_wait).await?;
        // The head alone: a run whose last plan stands loads no more (`load` reads the rest).
        let head = if refresh { None } else { store.load_head().await? };
        let head = head.filter(|h| h.manifest_sha256 == state_identity(manifest));
        let target_known = head.as_ref().is_some_and(|h| h.target_known);
        // Kept across `--refresh` and manifest edits: they belong to the target's users.
        let target = manifest.target.base_url.clone();
        let clocks = store.load_clocks(&target).await?;
        let pattern_pairings = store.load_pattern_pairings().await?;
        let forgotten = store.load_forgotten(&target).await?;
        let watch = store.load_watch(&target).await?;
        Ok(Some(Self {
            forgotten,
            watch_loaded: watch.clone(),
            watch,
            pattern_pairings_loaded: pattern_pairings.clone(),
            pattern_pairings,
            store,
            head,
            loaded: None,
            users_spared: false,
            in_full: false,
            managed: manifest.users.managed_paths(),
            target,
            clocks_loaded: clocks.clone(),
            clocks,
            target_known,
            resumed_from: BTreeMap::new(),
        }))
    }

    /// What the planner knows of time: `now`, and when scimform disabled each user that is gone.
    pub fn clock(&self, now: Option<jiff::Timestamp>) -> Clock {
        Clock { now, disabled_at: self.clocks.clone() }
    }

    /// The deprovision clocks, as the run leaves them so far.
    pub fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    /// What the run leaves of the deprovision clocks (saved by `save` or `save_clocks`).
    pub fn set_clocks(&mut self, clocks: Clocks) {
        self.clocks = clocks;
    }

    /// What `state forget` took out of scimform's hands in this target.
    pub fn forgotten(&self) -> &crate::desired::Forgotten {
        &self.forgotten
    }

    /// How the target's changes are seen (kept across runs, per target).
    pub fn watch(&self) -> &crate::state::TargetWatch {
        &self.watch
    }

    /// What the run learnt of the target's changes (saved by `save`).
    pub fn set_watch(&mut self, watch: crate::state::TargetWatch) {
        self.watch = watch;
    }

    /// Raises the newest `meta.lastModified` known to `newest` (what the run's writes were
    /// answered with), so the next run asks only from there.
    pub fn saw_modified(&mut self, newest: Option<jiff::Timestamp>) {
        self.watch.saw(newest);
    }

    /// Saves what is forgotten (`state forget`), at once and on its own.
    pub async fn save_forgotten(&mut self, forgotten: crate::desired::Forgotten) -> anyhow::Result<()> {
        self.store.save_forgotten(&self.target, &forgotten).await?;
        self.forgotten = forgotten;
        Ok(())
    }

    /// The pairings the group patterns made in the last run that applied.
    pub fn last_pattern_pairings(&self) -> &BTreeMap<String, String> {
        &self.pattern_pairings_loaded
    }

    /// The pairings the group patterns make in this run (saved by `save`).
    pub fn set_pattern_pairings(&mut self, pairings: BTreeMap<String, String>) {
        self.pattern_pairings = pairings;
    }

    /// Saves the deprovision clocks when they changed.
    pub async fn save_clocks(&mut self) -> anyhow::Result<()> {
        if self.clocks != self.clocks_loaded {
            self.store.save_clocks(&self.target, &self.clocks).await?;
            self.clocks_loaded = self.clocks.clone();
        }
        Ok(())
    }

    /// Plans against the target as read now rather than as remembered, and makes the plan
    /// afresh (a saved plan, made for review, is made against what is).
    pub fn read_target_in_full(&mut self) {
        self.in_full = true;
    }

    /// Reads what the last run left of the target and the sources (`open` reads only its head).
    pub async fn load(&mut self) -> anyhow::Result<()> {
        self.load_sparing(false).await?;
        if self.users_spared
            && let Some(target) = self.loaded.as_mut().and_then(|l| l.target.as_mut())
        {
            target.users = self.store.load_all_users(&self.managed).await?;
        }
        self.users_spared = false;
        Ok(())
    }

    /// `load`, leaving the target's users in the store when `spare` (a run that plans only the
    /// users that changed reads those with `remembered_users`).
    pub async fn load_sparing(&mut self, spare: bool) -> anyhow::Result<()> {
        if self.head.is_some() && self.loaded.is_none() {
            let identity = self.head.as_ref().map(|h| h.manifest_sha256.clone());
            let loaded = self.store.load(&self.managed, !spare).await?;
            self.loaded = loaded.filter(|s| Some(&s.manifest_sha256) == identity.as_ref());
            self.users_spared = spare;
        }
        Ok(())
    }

    /// The settled plan's baseline (`plan::delta`), read from the store, when the last plan
    /// stands by the clocks and a plan made afresh is not asked for.
    pub async fn baseline(&mut self, manifest: &Manifest) -> anyhow::Result<Option<crate::plan::delta::Baseline>> {
        if self.settled().is_none_or(|s| !s.stands_with(manifest, &self.clocks)) {
            return Ok(None);
        }
        let baseline = self.store.load_baseline().await?;
        Ok(baseline.filter(|b| b.hasher == crate::plan::delta::hasher()))
    }

    /// Every remembered target user, read from the store (once loaded sparing them).
    pub async fn all_remembered_users(&mut self) -> anyhow::Result<Vec<crate::current::CurrentUser>> {
        Ok(self.store.load_all_users(&self.managed).await?)
    }

    /// The groups of the remembered target, once loaded sparing its users.
    pub fn spared_target(&mut self) -> Option<CurrentState> {
        let loaded = self.loaded.as_mut().filter(|_| self.users_spared && !self.in_full)?;
        loaded.target.take()
    }

    /// What the last run left, for this manifest, once loaded.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.loaded.as_ref()
    }

    /// The target as the last run left it, once loaded in full.
    pub fn target(&self) -> Option<&CurrentState> {
        self.loaded.as_ref()?.target.as_ref().filter(|_| !self.in_full && !self.users_spared)
    }

    /// Takes the remembered target (once loaded in full) when `usable` says it serves this run.
    pub fn take_target_if(&mut self, usable: impl FnOnce(&CurrentState) -> bool) -> Option<CurrentState> {
        let loaded = self.loaded.as_mut().filter(|_| !self.in_full && !self.users_spared)?;
        if loaded.target.as_ref().is_some_and(usable) { loaded.target.take() } else { None }
    }

    /// What the last run saw when its plan changed nothing, unless the plan is to be made
    /// afresh.
    pub fn settled(&self) -> Option<&Settled> {
        self.head.as_ref()?.settled.as_ref().filter(|_| !self.in_full)
    }

    /// Makes this run's plan afresh, whatever the last run left.
    pub fn unsettle(&mut self) {
        if let Some(head) = &mut self.head {
            head.settled = None;
        }
    }

    /// The remembered target users with these ids, read from the store alone.
    pub async fn remembered_users(&mut self, ids: &[String]) -> anyhow::Result<Vec<crate::current::CurrentUser>> {
        Ok(self.store.load_users(ids, &self.managed).await?)
    }

    /// What source `name` is opened with in a run that keeps state: the cache it left last
    /// time (moved out of the snapshot, once loaded), if any.
    pub fn resume(&mut self, name: &str) -> Resume {
        let cache = self.loaded.as_mut().and_then(|l| l.sources.remove(name));
        if let Some(cache) = &cache {
            self.resumed_from.insert(name.to_owned(), cache.watermark.clone());
        }
        Resume::From(cache)
    }

    /// Saves what the run leaves, in one transaction, writing no more than changed: nothing
    /// when nothing did, only the sources' progress when their records and the target stayed.
    /// `settled`: what the run saw, when its plan changed nothing (`Settled::of`).
    pub async fn save(
        &mut self,
        manifest: &Manifest,
        target: TargetUpdate,
        reads: SourceReads,
        settled: Option<Settled>,
    ) -> anyhow::Result<()> {
        let mut written = None;
        let (target, target_changed) = match target {
            TargetUpdate::Kept => return self.save_kept(reads).await,
            TargetUpdate::Unchanged(current) => (Some(current), false),
            TargetUpdate::Replace(current) => {
                (Some(crate::state::trim_state(current, &manifest.users.managed_paths())), true)
            }
            TargetUpdate::Written { current, written: ids } => {
                written = Some(ids).filter(|_| self.target_known);
                // As the fold left them: the users kept by the managed paths already.
                (Some(current), true)
            }
            TargetUpdate::Forget => (None, self.target_known),
        };
        let moved = reads.caches.len() != self.resumed_from.len()
            || reads.caches.iter().any(|(name, cache)| self.resumed_from.get(name) != Some(&cache.watermark));
        let settled = settled.filter(|_| target.is_some());
        let snapshot = Snapshot { manifest_sha256: state_identity(manifest), target, sources: reads.caches, settled };
        // `written` only where the state knew the target: it has a head.
        if let Some(written) = &written {
            // The users not written are as saved: their rows stay.
            self.store.save_written(&snapshot, written, reads.records_changed).await?;
        } else if target_changed || reads.records_changed || self.head.is_none() {
            self.store.save(&snapshot).await?;
        } else if moved {
            self.store.save_progress(&snapshot).await?;
        } else if snapshot.settled.as_ref() != self.head.as_ref().and_then(|h| h.settled.as_ref()) {
            self.store.save_settled(snapshot.settled.as_ref()).await?;
        }
        if self.pattern_pairings != self.pattern_pairings_loaded {
            self.store.save_pattern_pairings(&self.pattern_pairings).await?;
            self.pattern_pairings_loaded = self.pattern_pairings.clone();
        }
        // The watch goes with the target it describes: a target forgotten is listed next time.
        if self.watch != self.watch_loaded && snapshot.target.is_some() {
            self.store.save_watch(&self.target, &self.watch).await?;
            self.watch_loaded = self.watch.clone();
        }
        self.save_clocks().await
    }

    /// What a run whose last plan stood leaves: its sources and target as they were, the watch
    /// moved on and the deprovision clocks.
    async fn save_kept(&mut self, reads: SourceReads) -> anyhow::Result<()> {
        if !reads.caches.is_empty() || reads.records_changed {
            anyhow::bail!("internal error: a run that kept the last plan read its sources; nothing was saved");
        }
        if self.watch != self.watch_loaded {
            self.store.save_watch(&self.target, &self.watch).await?;
            self.watch_loaded = self.watch.clone();
        }
        self.save_clocks().await
    }

    /// Forgets the remembered target, keeping the sources: the next run reads the target in full.
    pub async fn forget_target(&mut self) -> anyhow::Result<()> {
        Ok(self.store.forget_target().await?)
    }

    /// `--refresh-only`: remembers the target as read, keeping the sources as they were.
    pub async fn remember_target(&mut self, manifest: &Manifest, current: CurrentState) -> anyhow::Result<()> {
        self.load().await?;
        let sources = self.loaded.as_mut().map(|s| std::mem::take(&mut s.sources)).unwrap_or_default();
        let target = Some(crate::state::trim_state(current, &manifest.users.managed_paths()));
        let settled = None;
        self.store.save(&Snapshot { manifest_sha256: state_identity(manifest), target, sources, settled }).await?;
        Ok(())
    }
}

/// What a PostgreSQL state keys the manifest by: its `name`, else its path relative to the root
/// of the git repository that holds it (the same on every runner's checkout), else its path as
/// given.
pub fn state_key(manifest: &Manifest, file: &Path) -> String {
    if let Some(name) = &manifest.name {
        return name.clone();
    }
    let absolute = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let root = absolute.ancestors().skip(1).find(|dir| dir.join(".git").exists());
    let relative = root.and_then(|root| absolute.strip_prefix(root).ok()).map(Path::to_path_buf);
    let key = relative.unwrap_or_else(|| file.to_path_buf()).to_string_lossy().replace('\\', "/");
    key.strip_prefix("./").unwrap_or(&key).to_owned()
}

/// Renames a damaged state file to `<name>.corrupt-<UTC time>`, keeping it for a post-mortem.
fn move_aside(path: &Path) -> anyhow::Result<PathBuf> {
    let now = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{now}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside)
        .with_context(|| format!("cannot move the damaged state file `{}` aside", path.display()))?;
    Ok(aside)
}

fn state_file_exists(path: &Path) -> bool {
    std::fs::exists(path).unwrap_or(true)
}

/// What a state belongs to: the manifest's text and where it points once its `${env:…}` are
/// resolved (the target's URL, each source's directory). The same manifest run against another
/// target or directory starts afresh instead of trusting what another one left. Secrets are not
/// part of it: rotating a password keeps the state.
pub fn state_identity(manifest: &Manifest) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    let mut text = format!("manifest {}\ntarget {}\n", manifest.sha256, manifest.target.base_url);
    for (name, source) in &manifest.sources {
        let _ = match source {
            crate::manifest::model::SourceConfig::File(file) => writeln!(text, "{name} file {}", file.path.display()),
            crate::manifest::model::SourceConfig::Ldap(ldap) => {
                writeln!(text, "{name} ldap {} {}", ldap.url, ldap.base_dn)
            }
            crate::manifest::model::SourceConfig::Graph(graph) => {
                writeln!(text, "{name} graph {} {}", graph.tenant_id, graph.graph_url.as_deref().unwrap_or_default())
            }
        };
    }
    crate::scim::request::lower_hex(&Sha256::digest(text.as_bytes()))
}

/// An error opening the state, on one line with what to do (a state lock held, say).
fn one_line(error: &anyhow::Error) -> String {
    match error.chain().find_map(|e| e.downcast_ref::<StateError>()).and_then(StateError::hint) {
        Some(hint) => format!("{error:#}; {hint}"),
        None => format!("{error:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every runner's checkout keys the manifest alike: by its `name`, else by its path in the
    /// repository, however the path was given.
    #[test]
    fn the_state_key_is_the_same_on_every_checkout() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join(".git")).unwrap();
        std::fs::create_dir_all(repo.path().join("identity")).unwrap();
        let file = repo.path().join("identity/ad.yaml");
        let mut manifest = crate::plan::fixtures::manifest(crate::plan::fixtures::MANIFEST);
        assert_eq!(state_key(&manifest, &file), "identity/ad.yaml");
        manifest.name = Some("contact-centre".into());
        assert_eq!(state_key(&manifest, &file), "contact-centre");
        let outside = tempfile::tempdir().unwrap();
        manifest.name = None;
        let loose = outside.path().join("m.yaml");
        assert_eq!(state_key(&manifest, &loose), loose.to_string_lossy(), "no repository: the path as given");
    }
}
