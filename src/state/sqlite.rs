//! The SQLite state store (bundled SQLite: nothing to install). One file per manifest, written
//! in one transaction per snapshot, so a crash leaves the previous snapshot whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::{Snapshot, StateError};
use crate::manifest::model::TargetGroupRef;
use crate::target::{CurrentGroup, CurrentState, CurrentUser};

/// The schema this scimform writes; a newer file is refused rather than misread.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, version TEXT, resource TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS groups (
    reference TEXT PRIMARY KEY, id TEXT NOT NULL, display_name TEXT NOT NULL, version TEXT, members TEXT NOT NULL
);
";

/// A state file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    connection: Connection,
}

impl SqliteStore {
    /// Opens (creating if need be) the state file at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let display = path.display().to_string();
        let sqlite = |source| StateError::Sqlite { path: display.clone(), source };
        let connection = Connection::open(path).map_err(sqlite)?;
        connection.execute_batch(SCHEMA).map_err(sqlite)?;
        let found: Option<String> = connection
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |row| row.get(0))
            .optional()
            .map_err(sqlite)?;
        match found.map(|v| v.parse::<i64>()) {
            None => {
                connection
                    .execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
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

    fn corrupt(&self, detail: impl Into<String>) -> StateError {
        StateError::Corrupt { path: self.path.display().to_string(), detail: detail.into() }
    }

    /// The last snapshot, if any.
    pub fn load(&self) -> Result<Option<Snapshot>, StateError> {
        let sha: Option<String> = self
            .connection
            .query_row("SELECT value FROM meta WHERE key = 'manifest_sha256'", [], |row| row.get(0))
            .optional()
            .map_err(|e| self.error(e))?;
        let Some(manifest_sha256) = sha else { return Ok(None) };
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
            let resource: Value =
                serde_json::from_str(&resource).map_err(|e| self.corrupt(format!("user {id}: {e}")))?;
            users.push(CurrentUser { id, resource, version });
        }
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
            let reference =
                parse_reference(&reference).ok_or_else(|| self.corrupt(format!("group reference `{reference}`")))?;
            let members: BTreeSet<String> =
                serde_json::from_str(&members).map_err(|e| self.corrupt(format!("group {id}: {e}")))?;
            groups.insert(reference, CurrentGroup { id, display_name, members, version });
        }
        Ok(Some(Snapshot { manifest_sha256, target: CurrentState { users, groups } }))
    }

    /// Replaces the snapshot, all or nothing.
    pub fn save(&mut self, snapshot: &Snapshot) -> Result<(), StateError> {
        let path = self.path.display().to_string();
        let sqlite = |source| StateError::Sqlite { path: path.clone(), source };
        let transaction = self.connection.transaction().map_err(sqlite)?;
        transaction.execute_batch("DELETE FROM users; DELETE FROM groups;").map_err(sqlite)?;
        {
            let mut insert =
                transaction.prepare("INSERT INTO users (id, version, resource) VALUES (?1, ?2, ?3)").map_err(sqlite)?;
            for user in &snapshot.target.users {
                insert.execute(params![user.id, user.version, user.resource.to_string()]).map_err(sqlite)?;
            }
            let mut insert = transaction
                .prepare(
                    "INSERT INTO groups (reference, id, display_name, version, members) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sqlite)?;
            for (reference, group) in &snapshot.target.groups {
                let members = serde_json::to_string(&group.members).unwrap_or_default();
                insert
                    .execute(params![show_reference(reference), group.id, group.display_name, group.version, members])
                    .map_err(sqlite)?;
            }
        }
        transaction
            .execute(
                "INSERT INTO meta (key, value) VALUES ('manifest_sha256', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
                [&snapshot.manifest_sha256],
            )
            .map_err(sqlite)?;
        transaction.commit().map_err(sqlite)
    }

    /// Forgets the snapshot: the next run reads the target in full.
    pub fn invalidate(&mut self) -> Result<(), StateError> {
        self.connection
            .execute("DELETE FROM meta WHERE key = 'manifest_sha256'", [])
            .map(|_| ())
            .map_err(|e| self.error(e))
    }
}

fn show_reference(reference: &TargetGroupRef) -> String {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn snapshot(sha: &str, users: usize) -> Snapshot {
        let users = (0..users)
            .map(|i| CurrentUser {
                id: format!("u{i}"),
                resource: json!({"id": format!("u{i}"), "userName": format!("p{i}@x"), "active": true}),
                version: Some(format!("W/\"{i}\"")),
            })
            .collect();
        let group = CurrentGroup {
            id: "g1".into(),
            display_name: "Support".into(),
            members: ["u0".to_owned()].into(),
            version: None,
        };
        Snapshot {
            manifest_sha256: sha.into(),
            target: CurrentState {
                users,
                groups: BTreeMap::from([(TargetGroupRef::DisplayName("Support".into()), group)]),
            },
        }
    }

    #[test]
    fn a_snapshot_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.load().unwrap(), None, "a new file holds no snapshot");
        store.save(&snapshot("abc", 3)).unwrap();
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.load().unwrap(), Some(snapshot("abc", 3)));
    }

    #[test]
    fn a_save_replaces_the_whole_snapshot_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut store = SqliteStore::open(&path).unwrap();
        store.save(&snapshot("first", 3)).unwrap();
        store.save(&snapshot("second", 1)).unwrap();
        assert_eq!(store.load().unwrap(), Some(snapshot("second", 1)));

        // Two users with one id: the insert fails halfway, and the transaction leaves the last
        // snapshot whole, as a crash would.
        let mut broken = snapshot("third", 2);
        broken.target.users[1].id = "u0".into();
        assert!(store.save(&broken).is_err());
        assert_eq!(store.load().unwrap(), Some(snapshot("second", 1)));

        store.invalidate().unwrap();
        assert_eq!(store.load().unwrap(), None);
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
        assert!(error.contains("newer scimform (schema 99, this one reads 1)"), "{error}");
    }
}
