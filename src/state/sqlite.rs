//! The SQLite state store (bundled SQLite: nothing to install). One file per manifest, written
//! in one transaction per snapshot, so a crash leaves the previous snapshot whole: never a
//! source watermark without the records it was read with, nor a target the apply did not
//! leave.
#![allow(clippy::disallowed_methods, reason = "the state file is an edge")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::{BASELINE, SETTLED, Snapshot, StateError, decode, show_reference};
use crate::current::{CurrentState, CurrentUser};
use crate::scim::ScimPath;
use crate::source::SourceCache;

/// The schema this scimform writes; a newer file is refused rather than misread. Version 1
/// files (the target only) are read as they are and gain the source tables.
const SCHEMA_VERSION: i64 = 2;

/// The baseline's tables have no key: they are written and read whole (`write_settled`), and
/// an index would only slow the writing of 100,000 rows.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, version TEXT, resource TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    reference TEXT PRIMARY KEY, id TEXT NOT NULL, display_name TEXT NOT NULL, version TEXT, members TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (name TEXT PRIMARY KEY, watermark TEXT NOT NULL, groups TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS source_users (source TEXT NOT NULL, id TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (source, id));
CREATE TABLE IF NOT EXISTS baseline_users (key TEXT NOT NULL, fingerprint BLOB NOT NULL, id TEXT);
CREATE TABLE IF NOT EXISTS baseline_values (hash INTEGER NOT NULL, id TEXT NOT NULL);
";

const UPSERT_META: &str = "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2";

/// A state file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    connection: Connection,
}

impl SqliteStore {
    /// Opens (creating if need be, readable by its owner only: it holds people's attributes)
    /// the state file at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let display = path.display().to_string();
        create_private(path).map_err(|source| StateError::Create { path: display.clone(), source })?;
        let sqlite = |source| StateError::Sqlite { path: display.clone(), source };
        let connection = Connection::open(path).map_err(sqlite)?;
        connection.execute_batch(SCHEMA).map_err(sqlite)?;
        let found: Option<String> = connection
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |row| row.get(0))
            .optional()
            .map_err(sqlite)?;
        match found.map(|v| v.parse::<i64>()) {
            None | Some(Ok(1)) => {
                connection
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
                        [SCHEMA_VERSION.to_string()],
                    )
                    .map_err(sqlite)?;
            }
            Some(Ok(version)) if version <= SCHEMA_VERSION => {}
            Some(Ok(found)) => return Err(StateError::Schema { path: display, found, supported: SCHEMA_VERSION }),
            Some(Err(_)) => {
                return Err(StateError::Corrupt { path: display, detail: "unreadable schema_version".into() });
            }
        }
        Ok(Self { path: path.to_path_buf(), connection })
    }

    fn error(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite { path: self.path.display().to_string(), source }
    }

    pub(super) fn corrupt(&self, detail: impl Into<String>) -> StateError {
        StateError::Corrupt { path: self.path.display().to_string(), detail: detail.into() }
    }

    /// Sets one meta row, on its own.
    pub(super) fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StateError> {
        self.connection.execute(UPSERT_META, [key, value]).map(|_| ()).map_err(|e| self.error(e))
    }

    pub(super) fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        self.connection
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0))
            .optional()
            .map_err(|e| self.error(e))
    }

    /// The last snapshot, if any.
    pub fn load(&self, managed: &[ScimPath], users: bool) -> Result<Option<Snapshot>, StateError> {
        let Some(manifest_sha256) = self.meta("manifest_sha256")? else { return Ok(None) };
        // Files of schema 1 have no flag: their target was always known.
        let target = if self.meta("target_known")?.as_deref() == Some("0") {
            None
        } else {
            Some(self.load_target(managed, users)?)
        };
        let settled = if target.is_some() { self.meta(SETTLED)?.as_deref().and_then(decode::settled) } else { None };
        Ok(Some(Snapshot { manifest_sha256, target, sources: self.load_sources()?, settled }))
    }

    /// The baseline saved with the settled plan, if any (`Store::load_baseline`).
    pub fn load_baseline(&self) -> Result<Option<crate::plan::delta::Baseline>, StateError> {
        let Some(head) = self.meta(BASELINE)?.filter(|h| !h.is_empty()) else { return Ok(None) };
        let rows = || -> rusqlite::Result<_> {
            // Counted first: the vector is made once, at its size.
            let count: usize = self.connection.query_row("SELECT count(*) FROM baseline_users", [], |r| r.get(0))?;
            let mut users = Vec::with_capacity(count);
            let mut statement = self.connection.prepare("SELECT key, fingerprint, id FROM baseline_users")?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                let Some(user) = decode::baseline_user(row.get(0)?, row.get_ref(1)?.as_blob()?, row.get(2)?) else {
                    return Ok(None);
                };
                users.push(user);
            }
            let mut values = self.connection.prepare("SELECT hash, id FROM baseline_values")?;
            let values = values.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(Some((users, values.collect::<rusqlite::Result<Vec<(i64, String)>>>()?)))
        };
        let Some((users, values)) = rows().map_err(|e| self.error(e))? else { return Ok(None) };
        Ok(decode::baseline(&head, users, values))
    }

    /// Replaces what the last run saw when its plan changed nothing, with its baseline, all or
    /// nothing.
    pub fn save_settled(&mut self, settled: Option<&super::Settled>) -> Result<(), StateError> {
        let path = self.path.display().to_string();
        let sqlite = |source| StateError::Sqlite { path: path.clone(), source };
        let transaction = self.connection.transaction().map_err(sqlite)?;
        write_settled(&transaction, settled).map_err(sqlite)?;
        transaction.commit().map_err(sqlite)
    }

    /// The remembered users with these ids, sorted by id.
    pub fn load_users(&self, ids: &[String], managed: &[ScimPath]) -> Result<Vec<CurrentUser>, StateError> {
        let mut statement = self
            .connection
            .prepare("SELECT id, version, resource FROM users WHERE id = ?1")
            .map_err(|e| self.error(e))?;
        let mut users = Vec::new();
        for id in ids {
            let found = statement
                .query_row([id], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?, row.get::<_, String>(2)?))
                })
                .optional()
                .map_err(|e| self.error(e))?;
            if let Some((id, version, resource)) = found {
                users.push(decode::user(&id, version, &resource, managed).map_err(|d| self.corrupt(d))?);
            }
        }
        users.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(users)
    }

    fn load_target(&self, managed: &[ScimPath], users: bool) -> Result<CurrentState, StateError> {
        let users = if users { self.load_all_users(managed)? } else { Vec::new() };
        let mut groups = BTreeMap::new();
        let mut statement = self
            .connection
            .prepare("SELECT reference, id, display_name, version, members FROM groups")
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.error(e))?;
        for row in rows {
            let (reference, id, display_name, version, members) = row.map_err(|e| self.error(e))?;
            let (reference, group) =
                decode::group(&reference, id, display_name, version, &members).map_err(|d| self.corrupt(d))?;
            groups.insert(reference, group);
        }
        Ok(CurrentState { users, groups })
    }

    /// Every remembered user, sorted by id.
    pub fn load_all_users(&self, managed: &[ScimPath]) -> Result<Vec<CurrentUser>, StateError> {
        let mut users = Vec::new();
        let mut statement = self
            .connection
            .prepare("SELECT id, version, resource FROM users ORDER BY id")
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?, row.get::<_, String>(2)?))
            })
            .map_err(|e| self.error(e))?;
        for row in rows {
            let (id, version, resource) = row.map_err(|e| self.error(e))?;
            users.push(decode::user(&id, version, &resource, managed).map_err(|d| self.corrupt(d))?);
        }
        Ok(users)
    }

    fn load_sources(&self) -> Result<BTreeMap<String, SourceCache>, StateError> {
        let mut sources = BTreeMap::new();
        let mut statement =
            self.connection.prepare("SELECT name, watermark, groups FROM sources").map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)))
            .map_err(|e| self.error(e))?;
        for row in rows {
            let (name, watermark, groups) = row.map_err(|e| self.error(e))?;
            let cache = decode::source(&name, &watermark, &groups).map_err(|d| self.corrupt(d))?;
            sources.insert(name, cache);
        }
        let mut statement = self
            .connection
            .prepare("SELECT source, id, record FROM source_users ORDER BY source, id")
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)))
            .map_err(|e| self.error(e))?;
        for row in rows {
            let (source, id, record) = row.map_err(|e| self.error(e))?;
            decode::add_record(&mut sources, &source, &id, &record).map_err(|d| self.corrupt(d))?;
        }
        Ok(sources)
    }

    /// Replaces the snapshot, all or nothing.
    pub fn save(&mut self, snapshot: &Snapshot) -> Result<(), StateError> {
        self.write(snapshot, None, true)
    }

    /// Replaces the snapshot whose target differs from the one saved only in the users
    /// `written` names (changed, created or deleted: their rows alone are written), all or
    /// nothing; the sources' records only `with_records`.
    pub fn save_written(
        &mut self,
        snapshot: &Snapshot,
        written: &BTreeSet<String>,
        with_records: bool,
    ) -> Result<(), StateError> {
        self.write(snapshot, Some(written), with_records)
    }

    fn write(
        &mut self,
        snapshot: &Snapshot,
        written: Option<&BTreeSet<String>>,
        with_records: bool,
    ) -> Result<(), StateError> {
        let path = self.path.display().to_string();
        let sqlite = |source| StateError::Sqlite { path: path.clone(), source };
        let transaction = self.connection.transaction().map_err(sqlite)?;
        let users = if written.is_some() { "" } else { "DELETE FROM users;" };
        let records = if with_records { "DELETE FROM source_users;" } else { "" };
        transaction
            .execute_batch(&format!("{users} DELETE FROM groups; DELETE FROM sources; {records}"))
            .map_err(sqlite)?;
        if let Some(target) = &snapshot.target {
            let mut insert =
                transaction.prepare("INSERT INTO users (id, version, resource) VALUES (?1, ?2, ?3)").map_err(sqlite)?;
            let mut delete = transaction.prepare("DELETE FROM users WHERE id = ?1").map_err(sqlite)?;
            for id in written.into_iter().flatten() {
                delete.execute([id]).map_err(sqlite)?;
            }
            let rows = target.users.iter().filter(|u| written.is_none_or(|w| w.contains(&u.id)));
            for user in rows {
                insert.execute(params![user.id, user.version, user.to_resource().to_string()]).map_err(sqlite)?;
            }
            let mut insert = transaction
                .prepare(
                    "INSERT INTO groups (reference, id, display_name, version, members) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sqlite)?;
            for (reference, group) in &target.groups {
                let members = serde_json::to_string(&group.members).unwrap_or_default();
                insert
                    .execute(params![show_reference(reference), group.id, group.display_name, group.version, members])
                    .map_err(sqlite)?;
            }
        }
        write_sources(&transaction, snapshot, with_records).map_err(sqlite)?;
        write_meta(&transaction, snapshot).map_err(sqlite)?;
        transaction.commit().map_err(sqlite)
    }

    /// Records how far the sources got (watermarks and groups) when their records and the
    /// target are as saved already: the run read nothing that changes them.
    pub fn save_progress(&mut self, snapshot: &Snapshot) -> Result<(), StateError> {
        let path = self.path.display().to_string();
        let sqlite = |source| StateError::Sqlite { path: path.clone(), source };
        let transaction = self.connection.transaction().map_err(sqlite)?;
        transaction.execute_batch("DELETE FROM sources;").map_err(sqlite)?;
        write_sources(&transaction, snapshot, false).map_err(sqlite)?;
        write_meta(&transaction, snapshot).map_err(sqlite)?;
        transaction.commit().map_err(sqlite)
    }

    /// Forgets the target (the sources stay): the next run reads the target in full.
    pub fn forget_target(&mut self) -> Result<(), StateError> {
        self.connection
            .execute(
                "INSERT INTO meta (key, value) VALUES ('target_known', '0') ON CONFLICT(key) DO UPDATE SET value = '0'",
                [],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }
}

/// Creates `path` with mode 0600 unless it exists (SQLite would create it with the umask's mode).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn write_sources(
    transaction: &rusqlite::Transaction<'_>,
    snapshot: &Snapshot,
    with_records: bool,
) -> rusqlite::Result<()> {
    let mut insert = transaction.prepare("INSERT INTO sources (name, watermark, groups) VALUES (?1, ?2, ?3)")?;
    for (name, cache) in &snapshot.sources {
        let groups = serde_json::to_string(&cache.groups).unwrap_or_default();
        insert.execute(params![name, cache.watermark.to_string(), groups])?;
    }
    if with_records {
        let mut insert = transaction.prepare("INSERT INTO source_users (source, id, record) VALUES (?1, ?2, ?3)")?;
        for (name, cache) in &snapshot.sources {
            for record in cache.users.iter() {
                insert.execute(params![name, record.id, serde_json::to_string(record).unwrap_or_default()])?;
            }
        }
    }
    Ok(())
}

fn write_meta(transaction: &rusqlite::Transaction<'_>, snapshot: &Snapshot) -> rusqlite::Result<()> {
    transaction.execute(UPSERT_META, ["manifest_sha256", &snapshot.manifest_sha256])?;
    transaction.execute(UPSERT_META, ["target_known", if snapshot.target.is_some() { "1" } else { "0" }])?;
    write_settled(transaction, snapshot.settled.as_ref())
}

/// The settled plan and its baseline: the baseline's rows, one per user, so that keeping it
/// costs no more memory than the rows as they go.
fn write_settled(transaction: &rusqlite::Transaction<'_>, settled: Option<&super::Settled>) -> rusqlite::Result<()> {
    transaction.execute(UPSERT_META, [SETTLED, &decode::encode_settled(settled)])?;
    let baseline = settled.and_then(|s| s.baseline.as_deref());
    transaction.execute(UPSERT_META, [BASELINE, &decode::encode_baseline_head(baseline)])?;
    transaction.execute_batch("DELETE FROM baseline_users; DELETE FROM baseline_values;")?;
    let Some(baseline) = baseline else { return Ok(()) };
    let mut insert = transaction.prepare("INSERT INTO baseline_users (key, fingerprint, id) VALUES (?1, ?2, ?3)")?;
    for user in &baseline.users {
        insert.execute(params![user.key, user.fingerprint.to_be_bytes(), user.id])?;
    }
    let mut insert = transaction.prepare("INSERT INTO baseline_values (hash, id) VALUES (?1, ?2)")?;
    for (hash, id) in &baseline.values {
        insert.execute(params![decode::encode_value_hash(*hash), id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::sample_snapshot as snapshot;

    #[test]
    fn a_snapshot_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.load(&[], true).unwrap(), None, "a new file holds no snapshot");
        store.save(&snapshot("abc", 3)).unwrap();
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.load(&[], true).unwrap(), Some(snapshot("abc", 3)));
        let all = snapshot("abc", 3).target.unwrap().users;
        let found = store.load_users(&["u2".into(), "nobody".into(), "u0".into()], &[]).unwrap();
        assert_eq!(found, [all[0].clone(), all[2].clone()], "those it remembers, by id");
    }

    #[test]
    fn a_save_replaces_the_whole_snapshot_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut store = SqliteStore::open(&path).unwrap();
        store.save(&snapshot("first", 3)).unwrap();
        store.save(&snapshot("second", 1)).unwrap();
        assert_eq!(store.load(&[], true).unwrap(), Some(snapshot("second", 1)));

        // Two users with one id: the insert fails halfway, and the transaction leaves the last
        // snapshot whole, as a crash would: no watermark without its records.
        let mut broken = snapshot("third", 2);
        broken.sources.values_mut().for_each(|s| s.watermark = serde_json::json!({"usn": 99}));
        broken.target.as_mut().unwrap().users[1].id = "u0".into();
        assert!(store.save(&broken).is_err());
        assert_eq!(store.load(&[], true).unwrap(), Some(snapshot("second", 1)));

        // Progress alone: the watermark moves, the records stay.
        let mut moved = snapshot("second", 1);
        moved.sources.values_mut().for_each(|s| s.watermark = serde_json::json!({"usn": 100}));
        store.save_progress(&moved).unwrap();
        assert_eq!(store.load(&[], true).unwrap(), Some(moved.clone()));

        store.forget_target().unwrap();
        let forgotten = store.load(&[], true).unwrap().unwrap();
        assert_eq!((forgotten.target, forgotten.sources), (None, moved.sources), "the sources are kept");
    }

    /// After an apply planned against the saved users, only the rows of those written change:
    /// the rest stay as saved, and the whole reads back as the snapshot.
    #[test]
    fn a_save_of_written_users_writes_only_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        store.save(&snapshot("abc", 4)).unwrap();
        let mut next = snapshot("abc", 4);
        let target = next.target.as_mut().unwrap();
        target.users.retain(|u| u.id != "u1");
        target.users[0].set(&ScimPath::attribute("title"), serde_json::json!("Lead"));
        let mut created = target.users[0].clone();
        created.id = "u9".into();
        target.users.push(created);
        // A row the apply did not write is not rewritten, even if the snapshot says otherwise.
        target.users[1].set(&ScimPath::attribute("title"), serde_json::json!("not written"));
        let written: BTreeSet<String> = ["u0", "u1", "u9"].map(str::to_owned).into();
        store.save_written(&next, &written, false).unwrap();
        let loaded = store.load(&[], true).unwrap().unwrap();
        let ids: Vec<&str> = loaded.target.as_ref().unwrap().users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, ["u0", "u2", "u3", "u9"]);
        let users = &loaded.target.as_ref().unwrap().users;
        assert_eq!(users[0].get(&ScimPath::attribute("title")), Some(&serde_json::json!("Lead")));
        assert_eq!(users[1].get(&ScimPath::attribute("title")), None, "u2's row stays as saved");
        assert_eq!(loaded.sources, snapshot("abc", 4).sources, "the records stay");
    }

    /// A baseline of `users` users whose values' hashes span both halves of `u64` (a signed
    /// column holds them) and whose last user has no target user.
    fn baseline(users: usize, scope: u128) -> crate::plan::delta::Baseline {
        use crate::plan::delta::{Baseline, BaselineUser};
        let users = (0..users)
            .map(|i| BaselineUser {
                key: format!("k{i:04}"),
                fingerprint: u128::MAX - i as u128,
                id: (i + 1 < users).then(|| format!("t{i}")),
            })
            .collect();
        let values = vec![(7, "t1".to_owned()), (u64::MAX - 1, "t0".to_owned()), (1 << 63, "t2".to_owned())];
        Baseline::from_parts(users, values, scope, crate::plan::delta::hasher())
    }

    fn with_baseline(mut snapshot: Snapshot, baseline: &crate::plan::delta::Baseline) -> Snapshot {
        let settled = snapshot.settled.take().map(|s| s.with_baseline(Some(baseline.clone())));
        snapshot.settled = settled;
        snapshot
    }

    /// The baseline is kept in rows of its own, with its head in a meta row: it reads back as
    /// it was saved, goes with the settled plan, and a save that fails leaves it whole.
    #[test]
    fn a_baseline_round_trips_in_rows_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        assert_eq!(store.load_baseline().unwrap(), None);
        let first = baseline(300, 1);
        store.save(&with_baseline(snapshot("abc", 3), &first)).unwrap();
        assert_eq!(store.load_baseline().unwrap(), Some(first.clone()));
        let rows: i64 = store.connection.query_row("SELECT count(*) FROM baseline_users", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 300, "a row per user");

        let mut broken = with_baseline(snapshot("abc", 2), &baseline(5, 2));
        broken.target.as_mut().unwrap().users[1].id = "u0".into();
        assert!(store.save(&broken).is_err());
        assert_eq!(store.load_baseline().unwrap(), Some(first), "a failed save leaves it whole");

        let second = baseline(4, 3);
        let settled = snapshot("abc", 3).settled.map(|s| s.with_baseline(Some(second.clone())));
        store.save_settled(settled.as_ref()).unwrap();
        assert_eq!(store.load_baseline().unwrap(), Some(second), "saved with the settled plan alone");
        store.save_settled(None).unwrap();
        assert_eq!(store.load_baseline().unwrap(), None);
        let rows: i64 = store.connection.query_row("SELECT count(*) FROM baseline_users", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 0, "no rows outlive their baseline");

        // A fingerprint that is not 16 bytes makes the baseline none: a run in full.
        store.save(&with_baseline(snapshot("abc", 3), &baseline(3, 1))).unwrap();
        store.connection.execute("UPDATE baseline_users SET fingerprint = x'00' WHERE key = 'k0001'", []).unwrap();
        assert_eq!(store.load_baseline().unwrap(), None);

        // The whole baseline an older scimform kept in the meta row is none: a run in full.
        store.save(&with_baseline(snapshot("abc", 3), &baseline(3, 1))).unwrap();
        store.set_meta(BASELINE, r#"{"users":[{"k":"a","f":1}],"values":[],"scope":1,"hasher":2}"#).unwrap();
        assert_eq!(store.load_baseline().unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_state_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        SqliteStore::open(&path).unwrap().save(&snapshot("abc", 1)).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(SqliteStore::open(&path).unwrap());
        let connection = Connection::open(&path).unwrap();
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'", []).unwrap();
        drop(connection);
        let error = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(error.contains("newer scimform (schema 99, this one reads 2)"), "{error}");
    }

    #[test]
    fn a_schema_1_file_is_read_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE users (id TEXT PRIMARY KEY, version TEXT, resource TEXT NOT NULL);
                 CREATE TABLE groups (reference TEXT PRIMARY KEY, id TEXT NOT NULL, display_name TEXT NOT NULL, version TEXT, members TEXT NOT NULL);
                 INSERT INTO meta VALUES ('schema_version', '1'), ('manifest_sha256', 'old');
                 INSERT INTO users VALUES ('u1', NULL, '{\"id\":\"u1\"}');",
            )
            .unwrap();
        drop(connection);
        let loaded = SqliteStore::open(&path).unwrap().load(&[], true).unwrap().unwrap();
        assert_eq!(loaded.target.unwrap().users.len(), 1);
        assert!(loaded.sources.is_empty());
    }
}
