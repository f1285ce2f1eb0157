//! State kept between runs, per manifest: what the target looked like after the last run (each
//! managed user's managed attributes and version, the paired groups) and, for sources that
//! read incrementally, their watermarks with the records and groups read (`SourceCache`). With
//! it a scheduled run reads only what changed in the sources and plans against the cache
//! instead of listing the whole target (13 minutes for 100,000 Genesys users), and every write
//! still carries the cached version as `If-Match`, so an edit made in the target since is
//! refused, not overwritten.
//!
//! What an apply leaves is folded by `apply::fold` (pure); the stores (`sqlite`, the default;
//! `postgres`, which also holds the run lock) only read and write snapshots, each in one
//! transaction.

pub(crate) mod decode;
pub mod postgres;
mod postgres_tls;
pub mod session;
pub mod settled;
pub mod sqlite;

use std::collections::BTreeMap;

use serde_json::Value;

pub use postgres::PostgresStore;
pub use session::{RunState, SourceReads, TargetUpdate, state_identity};
pub use settled::Settled;
pub use sqlite::SqliteStore;

use crate::current::{CurrentState, CurrentUser};
use crate::manifest::model::TargetGroupRef;
use crate::scim::ScimPath;
use crate::source::SourceCache;

/// What the last run left.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// The manifest it was made with: another manifest means another mapping, so a full run.
    pub manifest_sha256: String,
    /// The target as the last run left it; `None` when that run could not follow it exactly
    /// (a failed or stale write), so the next run reads the target in full.
    pub target: Option<CurrentState>,
    /// What each incrementally read source got to, by source name.
    pub sources: BTreeMap<String, SourceCache>,
    /// What the last run saw when its plan changed nothing; `None` otherwise.
    pub settled: Option<Settled>,
}

/// What a store tells of the last run without loading its target or sources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Head {
    pub manifest_sha256: String,
    /// The state remembers the target (`Snapshot::target` is `Some`).
    pub target_known: bool,
    pub settled: Option<Settled>,
}

/// The meta row that holds `Snapshot::settled` (empty: none).
const SETTLED: &str = "settled";

/// The meta row that holds `Settled::baseline` but for its rows (empty: none).
const BASELINE: &str = "baseline";

/// When scimform disabled each user that is gone (`delete_after_days`), by target id.
pub type Clocks = BTreeMap<String, jiff::Timestamp>;

/// The meta row that holds a target's clocks.
fn clocks_key(target: &str) -> String {
    format!("disabled_at {target}")
}

/// What a run learnt of how to see the target's changes without listing it: whether it filters
/// users on `meta.lastModified`, and the newest `meta.lastModified` read (the service's clock).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetWatch {
    #[serde(default)]
    pub filters_modified: Option<bool>,
    /// RFC 3339.
    #[serde(default)]
    pub newest_modified: Option<String>,
}

impl TargetWatch {
    /// The newest `meta.lastModified` known.
    pub fn newest(&self) -> Option<jiff::Timestamp> {
        self.newest_modified.as_deref().and_then(|t| t.parse().ok())
    }

    /// Raises the newest `meta.lastModified` known to `seen`, when that is newer.
    pub fn saw(&mut self, seen: Option<jiff::Timestamp>) {
        if let Some(seen) = seen.filter(|s| self.newest().is_none_or(|known| *s > known)) {
            self.newest_modified = Some(seen.to_string());
        }
    }
}

/// The meta row that holds a target's watch.
fn watch_key(target: &str) -> String {
    format!("watch {target}")
}

/// The meta row that holds what `state forget` took out of scimform's hands in a target.
fn forgotten_key(target: &str) -> String {
    format!("forgotten {target}")
}

/// Where the state lives: a SQLite file (the default), or a PostgreSQL database for runners
/// that keep no files between runs.
#[derive(Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    /// Opens the store `location` names: a `postgres://` or `postgresql://` URL (the state of
    /// the manifest `key`, with the run lock taken), else a file.
    pub async fn open(location: &str, key: &str) -> Result<Self, StateError> {
        Self::open_waiting(location, key, std::time::Duration::ZERO).await
    }

    /// `open`, waiting up to `wait` for a run lock another run holds.
    pub async fn open_waiting(location: &str, key: &str, wait: std::time::Duration) -> Result<Self, StateError> {
        if crate::settings::is_postgres_url(location) {
            return Ok(Store::Postgres(PostgresStore::open(location, key, wait).await?));
        }
        Ok(Store::Sqlite(SqliteStore::open(std::path::Path::new(location))?))
    }

    /// What the last run left, in brief, if it left anything.
    pub async fn load_head(&mut self) -> Result<Option<Head>, StateError> {
        let Some(manifest_sha256) = self.meta("manifest_sha256").await? else { return Ok(None) };
        // Files of schema 1 have no flag: their target was always known.
        let target_known = self.meta("target_known").await?.as_deref() != Some("0");
        let settled = if target_known { self.meta(SETTLED).await?.as_deref().and_then(decode::settled) } else { None };
        Ok(Some(Head { manifest_sha256, target_known, settled }))
    }

    /// The remembered target users with these ids (those it remembers), sorted by id, each
    /// keeping `managed` (every attribute when empty).
    pub async fn load_users(&mut self, ids: &[String], managed: &[ScimPath]) -> Result<Vec<CurrentUser>, StateError> {
        match self {
            Store::Sqlite(store) => store.load_users(ids, managed),
            Store::Postgres(store) => store.load_users(ids, managed).await,
        }
    }

    /// Replaces what the last run saw when its plan changed nothing, on its own, with its
    /// baseline, all or nothing.
    pub async fn save_settled(&mut self, settled: Option<&Settled>) -> Result<(), StateError> {
        match self {
            Store::Sqlite(store) => store.save_settled(settled),
            Store::Postgres(store) => store.save_settled(settled).await,
        }
    }

    /// The baseline saved with the settled plan (`Settled::baseline`), if any: its meta row
    /// (`BASELINE`) and a row per user, read only by a run whose sources changed.
    pub async fn load_baseline(&mut self) -> Result<Option<crate::plan::delta::Baseline>, StateError> {
        match self {
            Store::Sqlite(store) => store.load_baseline(),
            Store::Postgres(store) => store.load_baseline().await,
        }
    }

    /// Every remembered target user, each keeping `managed` (what `load` leaves out when asked).
    pub async fn load_all_users(&mut self, managed: &[ScimPath]) -> Result<Vec<CurrentUser>, StateError> {
        match self {
            Store::Sqlite(store) => store.load_all_users(managed),
            Store::Postgres(store) => store.load_all_users(managed).await,
        }
    }

    /// The last run's snapshot, if any, its users keeping `managed` (every attribute when
    /// empty); without the target's users (its groups only) unless `users`.
    pub async fn load(&mut self, managed: &[ScimPath], users: bool) -> Result<Option<Snapshot>, StateError> {
        match self {
            Store::Sqlite(store) => store.load(managed, users),
            Store::Postgres(store) => store.load(managed, users).await,
        }
    }

    /// Replaces the snapshot, all or nothing.
    pub async fn save(&mut self, snapshot: &Snapshot) -> Result<(), StateError> {
        match self {
            Store::Sqlite(store) => store.save(snapshot),
            Store::Postgres(store) => store.save(snapshot).await,
        }
    }

    /// Replaces the snapshot whose target differs from the one saved only in the users
    /// `written` names, writing only their rows (and the sources' records `with_records`).
    pub async fn save_written(
        &mut self,
        snapshot: &Snapshot,
        written: &std::collections::BTreeSet<String>,
        with_records: bool,
    ) -> Result<(), StateError> {
        match self {
            Store::Sqlite(store) => store.save_written(snapshot, written, with_records),
            Store::Postgres(store) => store.save_written(snapshot, written, with_records).await,
        }
    }

    /// Records the sources' watermarks and groups when their records and the target are as
    /// saved already.
    pub async fn save_progress(&mut self, snapshot: &Snapshot) -> Result<(), StateError> {
        match self {
            Store::Sqlite(store) => store.save_progress(snapshot),
            Store::Postgres(store) => store.save_progress(snapshot).await,
        }
    }

    /// When scimform disabled each user of `target` (a base URL) that is gone, by target id:
    /// kept apart from the snapshot, so it outlives an edit of the manifest and `--refresh`.
    pub async fn load_clocks(&mut self, target: &str) -> Result<Clocks, StateError> {
        let text = self.meta(&clocks_key(target)).await?;
        text.map_or_else(|| Ok(Clocks::new()), |t| decode::clocks(&t).map_err(|d| self.corrupt(d)))
    }

    /// Replaces the deprovision clocks of `target`.
    pub async fn save_clocks(&mut self, target: &str, clocks: &Clocks) -> Result<(), StateError> {
        self.set_meta(&clocks_key(target), &decode::encode_clocks(clocks)).await
    }

    /// The users and groups of `target` that `state forget` made scimform stop managing: kept
    /// apart from the snapshot, so it outlives `--refresh` and manifest edits.
    pub async fn load_forgotten(&mut self, target: &str) -> Result<crate::desired::Forgotten, StateError> {
        let text = self.meta(&forgotten_key(target)).await?;
        let decoded = text.map(|t| serde_json::from_str(&t).map_err(|e| format!("forgotten resources: {e}")));
        decoded.transpose().map(Option::unwrap_or_default).map_err(|d| self.corrupt(d))
    }

    /// Replaces what is forgotten in `target`; the last plan no longer stands.
    pub async fn save_forgotten(
        &mut self,
        target: &str,
        forgotten: &crate::desired::Forgotten,
    ) -> Result<(), StateError> {
        self.set_meta(&forgotten_key(target), &serde_json::to_string(forgotten).unwrap_or_default()).await?;
        self.save_settled(None).await
    }

    /// How the target's changes are seen (`TargetWatch`).
    pub async fn load_watch(&mut self, target: &str) -> Result<TargetWatch, StateError> {
        let text = self.meta(&watch_key(target)).await?;
        let decoded = text.map(|t| serde_json::from_str(&t).map_err(|e| format!("target watch: {e}")));
        decoded.transpose().map(Option::unwrap_or_default).map_err(|d| self.corrupt(d))
    }

    /// Replaces the target's watch.
    pub async fn save_watch(&mut self, target: &str, watch: &TargetWatch) -> Result<(), StateError> {
        self.set_meta(&watch_key(target), &serde_json::to_string(watch).unwrap_or_default()).await
    }

    /// The pairings the manifest's group patterns made in the last run that applied: pairing
    /// name -> target group display name.
    pub async fn load_pattern_pairings(&mut self) -> Result<BTreeMap<String, String>, StateError> {
        let text = self.meta("pattern_pairings").await?;
        let decoded = text.map(|t| serde_json::from_str(&t).map_err(|e| format!("pattern pairings: {e}")));
        decoded.transpose().map(Option::unwrap_or_default).map_err(|d| self.corrupt(d))
    }

    /// Replaces the pairings the group patterns made.
    pub async fn save_pattern_pairings(&mut self, pairings: &BTreeMap<String, String>) -> Result<(), StateError> {
        self.set_meta("pattern_pairings", &serde_json::to_string(pairings).unwrap_or_default()).await
    }

    async fn meta(&mut self, key: &str) -> Result<Option<String>, StateError> {
        match self {
            Store::Sqlite(store) => store.meta(key),
            Store::Postgres(store) => store.meta(key).await,
        }
    }

    async fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StateError> {
        match self {
            Store::Sqlite(store) => store.set_meta(key, value),
            Store::Postgres(store) => store.set_meta(key, value).await,
        }
    }

    fn corrupt(&self, detail: String) -> StateError {
        match self {
            Store::Sqlite(store) => store.corrupt(detail),
            Store::Postgres(store) => store.corrupt(detail),
        }
    }

    /// Forgets the target, keeping the sources: the next run reads the target in full.
    pub async fn forget_target(&mut self) -> Result<(), StateError> {
        match self {
            Store::Sqlite(store) => store.forget_target()?,
            Store::Postgres(store) => store.forget_target().await?,
        }
        self.save_settled(None).await
    }
}

/// How a group reference is keyed in a store.
pub(crate) fn show_reference(reference: &TargetGroupRef) -> String {
    match reference {
        TargetGroupRef::Id(id) => format!("id:{id}"),
        TargetGroupRef::DisplayName(name) => format!("display_name:{name}"),
    }
}

fn parse_reference(text: &str) -> Option<TargetGroupRef> {
    if let Some(id) = text.strip_prefix("id:") {
        return Some(TargetGroupRef::Id(id.to_owned()));
    }
    text.strip_prefix("display_name:").map(|name| TargetGroupRef::DisplayName(name.to_owned()))
}

/// A state store that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot use the state file `{path}`")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the state file `{path}`")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the state file `{path}` was written by a newer scimform (schema {found}, this one reads {supported})")]
    Schema { path: String, found: i64, supported: i64 },
    #[error("the state `{path}` holds something that is not scimform state: {detail}")]
    Corrupt { path: String, detail: String },
    #[error("cannot use the state database `{url}`: {detail}")]
    Postgres { url: String, detail: String },
    #[error("another scimform run holds the state lock of `{key}` in `{url}`: {holder}")]
    Locked { url: String, key: String, holder: String },
}

impl StateError {
    /// What to do, printed after the error and its causes.
    pub fn hint(&self) -> Option<String> {
        match self {
            StateError::Locked { .. } => Some(
                "wait for it to finish (or pass `--lock-timeout`); the lock ends with that run's connection".into(),
            ),
            StateError::Schema { .. } => Some("run a newer scimform, or give another `--state`".into()),
            _ => None,
        }
    }

    /// Whether the state file is damaged (truncated, overwritten, not SQLite, or holding what
    /// no scimform wrote), as opposed to locked, newer or unreachable.
    pub fn is_damaged(&self) -> bool {
        match self {
            StateError::Corrupt { .. } => true,
            StateError::Sqlite { source: rusqlite::Error::SqliteFailure(failure, _), .. } => {
                matches!(failure.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            }
            _ => false,
        }
    }
}

/// A target state as the state file keeps it: users trimmed to what planning reads.
pub fn trim_state(current: CurrentState, managed: &[ScimPath]) -> CurrentState {
    CurrentState { users: current.users.into_iter().map(|u| u.trimmed(managed)).collect(), groups: current.groups }
}

/// One way the target differs from what the last run left: a managed attribute edited, a user
/// deleted or added, a group's members changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Drift {
    Changed { user: String, path: ScimPath, before: Option<Value>, after: Option<Value> },
    Deleted { user: String },
    Added { user: String },
    Members { group: String, added: Vec<String>, removed: Vec<String> },
}

/// The drift between the state file (`remembered`) and the target as read now (`now`), over
/// the managed attributes only. Sorted, so the report is stable.
pub fn drift(remembered: &CurrentState, now: &CurrentState, managed: &[ScimPath]) -> Vec<Drift> {
    let name = |user: &CurrentUser| user.user_name().map_or_else(|| user.id.clone(), str::to_owned);
    let before: BTreeMap<&str, &CurrentUser> = remembered.users.iter().map(|u| (u.id.as_str(), u)).collect();
    let after: BTreeMap<&str, &CurrentUser> = now.users.iter().map(|u| (u.id.as_str(), u)).collect();
    let mut found = Vec::new();
    for (id, old) in &before {
        let Some(new) = after.get(id) else {
            found.push(Drift::Deleted { user: name(old) });
            continue;
        };
        for path in managed {
            let (was, is) = (old.get(path).filter(|v| !v.is_null()), new.get(path).filter(|v| !v.is_null()));
            if was != is {
                found.push(Drift::Changed {
                    user: name(new),
                    path: path.clone(),
                    before: was.cloned(),
                    after: is.cloned(),
                });
            }
        }
    }
    // Users the last run did not leave (made by hand, or by another tool) are drift only when
    // they carry an ownership marker; the others are not ours to report.
    for (id, new) in &after {
        if !before.contains_key(id) && new.external_id().is_some() {
            found.push(Drift::Added { user: name(new) });
        }
    }
    for (reference, old) in &remembered.groups {
        let Some(new) = now.groups.get(reference) else { continue };
        let added: Vec<String> = new.members.difference(&old.members).cloned().collect();
        let removed: Vec<String> = old.members.difference(&new.members).cloned().collect();
        if !added.is_empty() || !removed.is_empty() {
            found.push(Drift::Members { group: new.display_name.clone(), added, removed });
        }
    }
    found
}

/// The drift as text, one line per difference.
pub fn render_drift(drift: &[Drift]) -> String {
    use std::fmt::Write as _;
    if drift.is_empty() {
        return "No drift: the target is as the last run left it.\n".to_owned();
    }
    let mut out = format!("Drift since the last run ({} difference(s) made in the target):\n\n", drift.len());
    let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "null".to_owned(), ToString::to_string);
    for d in drift {
        let _ = match d {
            Drift::Changed { user, path, before, after } => {
                writeln!(out, "  ~ user {}: {path} = {} -> {}", Value::String(user.clone()), show(before), show(after))
            }
            Drift::Deleted { user } => writeln!(out, "  - user {} was deleted", Value::String(user.clone())),
            Drift::Added { user } => writeln!(out, "  + user {} appeared", Value::String(user.clone())),
            Drift::Members { group, added, removed } => writeln!(
                out,
                "  ~ group {}: {} member(s) added, {} removed",
                Value::String(group.clone()),
                added.len(),
                removed.len()
            ),
        };
    }
    out
}

/// A snapshot with `users` target users, a paired group and an AD-like source (tests).
#[cfg(test)]
pub(crate) fn sample_snapshot(sha: &str, users: usize) -> Snapshot {
    use crate::current::CurrentGroup;
    use crate::record::{AttrValue, SourceRecord};
    use crate::source::cache::CachedGroup;
    use serde_json::json;
    let target_users = (0..users)
        .map(|i| {
            let resource = json!({"id": format!("u{i}"), "userName": format!("p{i}@x"), "active": true,
                "meta": {"version": format!("W/\"{i}\"")}});
            CurrentUser::from_resource(resource).unwrap()
        })
        .collect();
    let group = CurrentGroup {
        id: "g1".into(),
        display_name: "Support".into(),
        members: ["u0".to_owned()].into(),
        version: None,
    };
    let records = (0..users)
        .map(|i| {
            let mut record = SourceRecord::new(format!("guid-{i}"));
            record.insert("mail", AttrValue::Text(format!("p{i}@x")));
            record.disabled = i % 2 == 1;
            record
        })
        .collect();
    let cached = CachedGroup {
        id: "sg".into(),
        name: "Support".into(),
        members: vec!["guid-0".into()],
        unresolved: Vec::new(),
        walked: vec!["sg".into()],
    };
    Snapshot {
        manifest_sha256: sha.into(),
        target: Some(CurrentState {
            users: target_users,
            groups: BTreeMap::from([(TargetGroupRef::DisplayName("Support".into()), group)]),
        }),
        sources: BTreeMap::from([(
            "corp_ad".to_owned(),
            SourceCache {
                watermark: json!({"invocation_id": "i", "usn": 7}),
                users: std::sync::Arc::new(records),
                groups: BTreeMap::from([("name Support".to_owned(), cached)]),
            },
        )]),
        settled: Some(Settled {
            sources: BTreeMap::from([("corp_ad".to_owned(), "usn:i:7".to_owned())]),
            target_users: users,
            desired_users: users,
            plan: crate::plan::Plan { warnings: vec!["a manager outside the source".into()], ..Default::default() },
            gone: ["u9".to_owned()].into(),
            baseline: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn drift_names_edits_deletions_arrivals_and_members() {
        let managed: Vec<ScimPath> = ["userName", "title"].iter().map(|p| ScimPath::parse(p).unwrap()).collect();
        let before = crate::plan::render::text::tests::realistic_current();
        let mut now = before.clone();
        now.users.retain(|u| u.id != "t4");
        now.users[0].set(&ScimPath::parse("title").unwrap(), json!("Edited"));
        now.users[0].set(&ScimPath::parse("nickName").unwrap(), json!("not managed"));
        let mut arrival = now.users[0].clone();
        arrival.id = "t9".into();
        arrival.set(&ScimPath::parse("userName").unwrap(), json!("new@x.example"));
        now.users.push(arrival);
        now.groups.values_mut().for_each(|g| {
            g.members.insert("t9".into());
        });
        let found = drift(&before, &now, &managed);
        assert_eq!(
            found,
            [
                Drift::Changed {
                    user: "ann.lee@x.example".into(),
                    path: ScimPath::attribute("title"),
                    before: Some(json!("Agent")),
                    after: Some(json!("Edited"))
                },
                Drift::Deleted { user: "di.ro@x.example".into() },
                Drift::Added { user: "new@x.example".into() },
                Drift::Members { group: "Support Tier 1".into(), added: vec!["t9".into()], removed: Vec::new() },
            ]
        );
        assert!(render_drift(&found).starts_with("Drift since the last run (4 difference(s) made in the target):"));
        assert!(drift(&before, &before, &managed).is_empty());
    }
}
