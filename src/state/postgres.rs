//! The PostgreSQL state store, for runners that keep no files between runs (CI). One database
//! can hold the state of several manifests, each under its own key. A session-level advisory
//! lock on that key is taken when the store opens and held until the run ends: it is the run
//! lock across machines, so two runs of one manifest never interleave, wherever they run.
//! Every snapshot is written in one transaction, as in the SQLite store. Connections to another
//! machine use TLS (`sslmode=require` at least; the system roots and `SSL_CERT_FILE` are trusted).
#![allow(clippy::disallowed_methods, reason = "waiting for the run lock reads the clock")]

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};
use tokio_postgres::Client;
use tokio_postgres::config::{Host, SslMode};

use super::{BASELINE, SETTLED, Snapshot, StateError, decode, show_reference};
use crate::current::{CurrentState, CurrentUser};
use crate::scim::ScimPath;
use crate::source::SourceCache;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS scimform_meta (
    state_key TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (state_key, key));
CREATE TABLE IF NOT EXISTS scimform_users (
    state_key TEXT NOT NULL, id TEXT NOT NULL, version TEXT, resource TEXT NOT NULL, PRIMARY KEY (state_key, id));
CREATE TABLE IF NOT EXISTS scimform_groups (
    state_key TEXT NOT NULL, reference TEXT NOT NULL, id TEXT NOT NULL, display_name TEXT NOT NULL,
    version TEXT, members TEXT NOT NULL, PRIMARY KEY (state_key, reference));
CREATE TABLE IF NOT EXISTS scimform_sources (
    state_key TEXT NOT NULL, name TEXT NOT NULL, watermark TEXT NOT NULL, groups TEXT NOT NULL,
    PRIMARY KEY (state_key, name));
CREATE TABLE IF NOT EXISTS scimform_source_users (
    state_key TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (state_key, source, id));
CREATE TABLE IF NOT EXISTS scimform_baseline_users (
    state_key TEXT NOT NULL, key TEXT NOT NULL, fingerprint BYTEA NOT NULL, id TEXT);
CREATE INDEX IF NOT EXISTS scimform_baseline_users_key ON scimform_baseline_users (state_key);
CREATE TABLE IF NOT EXISTS scimform_baseline_values (state_key TEXT NOT NULL, hash BIGINT NOT NULL, id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS scimform_baseline_values_key ON scimform_baseline_values (state_key);
";

const UPSERT_META: &str = "INSERT INTO scimform_meta (state_key, key, value) VALUES ($1, $2, $3)
    ON CONFLICT (state_key, key) DO UPDATE SET value = $3";

/// How often a run waiting for the lock asks again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// A database's state for one manifest, with the run lock held.
pub struct PostgresStore {
    client: Client,
    /// The manifest's key: rows of other manifests are never read or written.
    key: String,
    /// The URL without its password, for messages.
    shown: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("url", &self.shown).field("key", &self.key).finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, takes the run lock for `key` (waiting up to `wait` while another run holds
    /// it) and creates the tables if need be.
    pub async fn open(url: &str, key: &str, wait: std::time::Duration) -> Result<Self, StateError> {
        let shown = redact(url);
        let error = |detail: String| StateError::Postgres { url: shown.clone(), detail };
        // libpq's `sslrootcert` (a CA file), which tokio-postgres does not know, is taken out.
        let (url, ca_file) = take_query_parameter(url, "sslrootcert");
        let tls = match &ca_file {
            Some(path) => super::postgres_tls::MakeRustls::with_ca_file(std::path::Path::new(path))
                .map_err(|detail| error(format!("cannot use `sslrootcert` `{path}`: {detail}")))?,
            None => super::postgres_tls::MakeRustls::with_system_roots(),
        };
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| error(format!("the URL is not a PostgreSQL connection URL: {e}")))?;
        let me = format!("scimform pid {} on host {}", std::process::id(), crate::lock::hostname());
        config.application_name(&me);
        // Off this machine, the state (and the password) go over TLS or not at all: `prefer`
        // (the default) would fall back to clear text for whoever answers.
        let local = config.get_hosts().iter().all(|host| match host {
            Host::Tcp(name) => crate::tls::is_loopback(name),
            Host::Unix(_) => true,
        });
        if !local {
            match config.get_ssl_mode() {
                SslMode::Disable => {
                    return Err(error(
                        "refusing `sslmode=disable` to a host that is not this machine: the state would cross the network in clear text; drop it (TLS is required)".into(),
                    ));
                }
                _ => {
                    config.ssl_mode(SslMode::Require);
                }
            }
        }
        let (client, connection) = config.connect(tls).await.map_err(|e| {
            error(format!(
                "cannot connect: {}; check the host, the credentials and, for TLS, `sslrootcert` (a CA file) or `SSL_CERT_FILE`",
                crate::causes::causes(&e)
            ))
        })?;
        tokio::spawn(async move {
            // Ends when the client is dropped; its errors surface on the client's calls.
            let _ = connection.await;
        });
        let lock = lock_id(key);
        let deadline = tokio::time::Instant::now() + wait;
        let taken = loop {
            let taken: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&lock])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|e| error(format!("cannot take the run lock: {}", crate::causes::causes(&e))))?;
            if taken || tokio::time::Instant::now() >= deadline {
                break taken;
            }
            tokio::time::sleep(LOCK_POLL.min(deadline - tokio::time::Instant::now())).await;
        };
        if !taken {
            let holder = client
                .query_opt(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                     WHERE l.locktype = 'advisory' AND l.granted
                       AND ((l.classid::bigint << 32) | l.objid::bigint) = $1",
                    &[&lock],
                )
                .await
                .ok()
                .flatten()
                .and_then(|row| row.try_get::<_, String>(0).ok())
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "another session".to_owned());
            return Err(StateError::Locked { url: shown, key: key.to_owned(), holder });
        }
        // Two first runs at once would race on CREATE TABLE IF NOT EXISTS: one at a time.
        let schema = format!("BEGIN; SELECT pg_advisory_xact_lock({}); {SCHEMA} COMMIT;", lock_id("schema"));
        client
            .batch_execute(&schema)
            .await
            .map_err(|e| error(format!("cannot create the state tables: {}", crate::causes::causes(&e))))?;
        Ok(Self { client, key: key.to_owned(), shown })
    }

    fn error(&self, what: &str, e: &tokio_postgres::Error) -> StateError {
        StateError::Postgres { url: self.shown.clone(), detail: format!("{what}: {}", crate::causes::causes(e)) }
    }

    pub(super) fn corrupt(&self, detail: impl Into<String>) -> StateError {
        StateError::Corrupt { path: self.shown.clone(), detail: detail.into() }
    }

    /// The rows `sql` selects for this manifest (`$1` is its key).
    async fn rows(&self, sql: &str) -> Result<Vec<tokio_postgres::Row>, StateError> {
        self.client.query(sql, &[&self.key]).await.map_err(|e| self.error("cannot read the state", &e))
    }

    /// Sets one meta row of this manifest, on its own.
    pub(super) async fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StateError> {
        self.client
            .execute(UPSERT_META, &[&self.key, &key, &value])
            .await
            .map(|_| ())
            .map_err(|e| self.error("cannot save the state", &e))
    }

    pub(super) async fn meta(&self, key: &str) -> Result<Option<String>, StateError> {
        let row = self
            .client
            .query_opt("SELECT value FROM scimform_meta WHERE state_key = $1 AND key = $2", &[&self.key, &key])
            .await
            .map_err(|e| self.error("cannot read the state", &e))?;
        row.map(|r| r.try_get(0)).transpose().map_err(|e| self.error("cannot read the state", &e))
    }

    /// The last snapshot for this manifest, if any.
    pub async fn load(&mut self, managed: &[ScimPath], users: bool) -> Result<Option<Snapshot>, StateError> {
        let Some(manifest_sha256) = self.meta("manifest_sha256").await? else { return Ok(None) };
        let target = if self.meta("target_known").await?.as_deref() == Some("0") {
            None
        } else {
            Some(self.load_target(managed, users).await?)
        };
        let settled =
            if target.is_some() { self.meta(SETTLED).await?.as_deref().and_then(decode::settled) } else { None };
        Ok(Some(Snapshot { manifest_sha256, target, sources: self.load_sources().await?, settled }))
    }

    /// The baseline saved with the settled plan, if any (`Store::load_baseline`).
    pub async fn load_baseline(&self) -> Result<Option<crate::plan::delta::Baseline>, StateError> {
        let Some(head) = self.meta(BASELINE).await?.filter(|h| !h.is_empty()) else { return Ok(None) };
        let read = |e| self.error("cannot read the state", &e);
        let rows = self.rows("SELECT key, fingerprint, id FROM scimform_baseline_users WHERE state_key = $1").await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            let (key, fingerprint, id) =
                (row.try_get(0).map_err(read)?, row.try_get(1).map_err(read)?, row.try_get(2).map_err(read)?);
            let Some(user) = decode::baseline_user(key, fingerprint, id) else { return Ok(None) };
            users.push(user);
        }
        let rows = self.rows("SELECT hash, id FROM scimform_baseline_values WHERE state_key = $1").await?;
        let values = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<Vec<(i64, String)>, tokio_postgres::Error>>()
            .map_err(read)?;
        Ok(decode::baseline(&head, users, values))
    }

    /// Replaces what the last run saw when its plan changed nothing, with its baseline, all or
    /// nothing.
    pub async fn save_settled(&mut self, settled: Option<&super::Settled>) -> Result<(), StateError> {
        let key = &self.key;
        let write = save_error(&self.shown);
        let transaction = self.client.transaction().await.map_err(&write)?;
        write_settled(&transaction, key, settled).await.map_err(&write)?;
        transaction.commit().await.map_err(&write)
    }

    /// The remembered users with these ids, sorted by id.
    pub async fn load_users(&self, ids: &[String], managed: &[ScimPath]) -> Result<Vec<CurrentUser>, StateError> {
        let read = |e| self.error("cannot read the state", &e);
        let rows = self
            .client
            .query(
                "SELECT id, version, resource FROM scimform_users WHERE state_key = $1 AND id = ANY($2) ORDER BY id",
                &[&self.key, &ids],
            )
            .await
            .map_err(|e| self.error("cannot read the state", &e))?;
        let mut users = Vec::with_capacity(rows.len());
        for row in rows {
            let (id, version, resource): (String, Option<String>, String) =
                (row.try_get(0).map_err(read)?, row.try_get(1).map_err(read)?, row.try_get(2).map_err(read)?);
            users.push(decode::user(&id, version, &resource, managed).map_err(|d| self.corrupt(d))?);
        }
        Ok(users)
    }

    /// Every remembered user, sorted by id.
    pub async fn load_all_users(&self, managed: &[ScimPath]) -> Result<Vec<CurrentUser>, StateError> {
        let read = |e| self.error("cannot read the state", &e);
        let rows =
            self.rows("SELECT id, version, resource FROM scimform_users WHERE state_key = $1 ORDER BY id").await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in rows {
            let (id, version, resource): (String, Option<String>, String) =
                (row.try_get(0).map_err(read)?, row.try_get(1).map_err(read)?, row.try_get(2).map_err(read)?);
            users.push(decode::user(&id, version, &resource, managed).map_err(|d| self.corrupt(d))?);
        }
        Ok(users)
    }

    async fn load_target(&self, managed: &[ScimPath], users: bool) -> Result<CurrentState, StateError> {
        let read = |e| self.error("cannot read the state", &e);
        let users = if users { self.load_all_users(managed).await? } else { Vec::new() };
        let rows = self
            .rows("SELECT reference, id, display_name, version, members FROM scimform_groups WHERE state_key = $1")
            .await?;
        let mut groups = BTreeMap::new();
        for row in rows {
            let reference: String = row.try_get(0).map_err(read)?;
            let members: String = row.try_get(4).map_err(read)?;
            let (id, display_name, version) =
                (row.try_get(1).map_err(read)?, row.try_get(2).map_err(read)?, row.try_get(3).map_err(read)?);
            let (reference, group) =
                decode::group(&reference, id, display_name, version, &members).map_err(|d| self.corrupt(d))?;
            groups.insert(reference, group);
        }
        Ok(CurrentState { users, groups })
    }

    async fn load_sources(&self) -> Result<BTreeMap<String, SourceCache>, StateError> {
        let read = |e| self.error("cannot read the state", &e);
        let rows = self.rows("SELECT name, watermark, groups FROM scimform_sources WHERE state_key = $1").await?;
        let mut sources = BTreeMap::new();
        for row in rows {
            let name: String = row.try_get(0).map_err(read)?;
            let watermark: String = row.try_get(1).map_err(read)?;
            let groups: String = row.try_get(2).map_err(read)?;
            let cache = decode::source(&name, &watermark, &groups).map_err(|d| self.corrupt(d))?;
            sources.insert(name, cache);
        }
        let rows = self
            .rows("SELECT source, id, record FROM scimform_source_users WHERE state_key = $1 ORDER BY source, id")
            .await?;
        for row in rows {
            let source: String = row.try_get(0).map_err(read)?;
            let id: String = row.try_get(1).map_err(read)?;
            let record: String = row.try_get(2).map_err(read)?;
            decode::add_record(&mut sources, &source, &id, &record).map_err(|d| self.corrupt(d))?;
        }
        Ok(sources)
    }

    /// Replaces this manifest's snapshot, all or nothing.
    pub async fn save(&mut self, snapshot: &Snapshot) -> Result<(), StateError> {
        self.write(snapshot, None, true).await
    }

    /// Replaces this manifest's snapshot whose target differs from the one saved only in the
    /// users `written` names (their rows alone are written), all or nothing; the sources'
    /// records only `with_records`.
    pub async fn save_written(
        &mut self,
        snapshot: &Snapshot,
        written: &BTreeSet<String>,
        with_records: bool,
    ) -> Result<(), StateError> {
        self.write(snapshot, Some(written), with_records).await
    }

    async fn write(
        &mut self,
        snapshot: &Snapshot,
        written: Option<&BTreeSet<String>>,
        with_records: bool,
    ) -> Result<(), StateError> {
        let key = &self.key;
        let write = save_error(&self.shown);
        let transaction = self.client.transaction().await.map_err(&write)?;
        let mut tables = vec!["scimform_groups", "scimform_sources"];
        tables.extend(written.is_none().then_some("scimform_users"));
        tables.extend(with_records.then_some("scimform_source_users"));
        for table in tables {
            transaction.execute(&format!("DELETE FROM {table} WHERE state_key = $1"), &[&key]).await.map_err(&write)?;
        }
        if let Some(written) = written {
            let ids: Vec<&str> = written.iter().map(String::as_str).collect();
            transaction
                .execute("DELETE FROM scimform_users WHERE state_key = $1 AND id = ANY($2)", &[&key, &ids])
                .await
                .map_err(&write)?;
        }
        if let Some(target) = &snapshot.target {
            // One statement per table, the rows as arrays: 100,000 users are one round trip.
            let rows: Vec<&CurrentUser> =
                target.users.iter().filter(|u| written.is_none_or(|w| w.contains(&u.id))).collect();
            let ids: Vec<&str> = rows.iter().map(|u| u.id.as_str()).collect();
            let versions: Vec<Option<&str>> = rows.iter().map(|u| u.version.as_deref()).collect();
            let resources: Vec<String> = rows.iter().map(|u| u.to_resource().to_string()).collect();
            transaction
                .execute(
                    "INSERT INTO scimform_users (state_key, id, version, resource)
                     SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[])",
                    &[&key, &ids, &versions, &resources],
                )
                .await
                .map_err(&write)?;
            for (reference, group) in &target.groups {
                let members = serde_json::to_string(&group.members).unwrap_or_default();
                transaction
                    .execute(
                        "INSERT INTO scimform_groups (state_key, reference, id, display_name, version, members)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&key, &show_reference(reference), &group.id, &group.display_name, &group.version, &members],
                    )
                    .await
                    .map_err(&write)?;
            }
        }
        write_sources(&transaction, key, snapshot).await.map_err(&write)?;
        for (name, cache) in snapshot.sources.iter().filter(|_| with_records) {
            let ids: Vec<&str> = cache.users.iter().map(|r| r.id.as_str()).collect();
            let records: Vec<String> =
                cache.users.iter().map(|r| serde_json::to_string(r).unwrap_or_default()).collect();
            transaction
                .execute(
                    "INSERT INTO scimform_source_users (state_key, source, id, record)
                     SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[])",
                    &[&key, name, &ids, &records],
                )
                .await
                .map_err(&write)?;
        }
        write_meta(&transaction, key, snapshot).await.map_err(&write)?;
        transaction.commit().await.map_err(&write)
    }

    /// Records how far the sources got when their records and the target are as saved already.
    pub async fn save_progress(&mut self, snapshot: &Snapshot) -> Result<(), StateError> {
        let key = &self.key;
        let write = save_error(&self.shown);
        let transaction = self.client.transaction().await.map_err(&write)?;
        transaction.execute("DELETE FROM scimform_sources WHERE state_key = $1", &[&key]).await.map_err(&write)?;
        write_sources(&transaction, key, snapshot).await.map_err(&write)?;
        write_meta(&transaction, key, snapshot).await.map_err(&write)?;
        transaction.commit().await.map_err(&write)
    }

    /// Forgets the target (the sources stay): the next run reads the target in full.
    pub async fn forget_target(&mut self) -> Result<(), StateError> {
        self.client
            .execute(
                "INSERT INTO scimform_meta (state_key, key, value) VALUES ($1, 'target_known', '0')
                 ON CONFLICT (state_key, key) DO UPDATE SET value = '0'",
                &[&self.key],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.error("cannot save the state", &e))
    }
}

async fn write_sources(
    transaction: &tokio_postgres::Transaction<'_>,
    key: &str,
    snapshot: &Snapshot,
) -> Result<(), tokio_postgres::Error> {
    for (name, cache) in &snapshot.sources {
        let groups = serde_json::to_string(&cache.groups).unwrap_or_default();
        transaction
            .execute(
                "INSERT INTO scimform_sources (state_key, name, watermark, groups) VALUES ($1, $2, $3, $4)",
                &[&key, name, &cache.watermark.to_string(), &groups],
            )
            .await?;
    }
    Ok(())
}

async fn write_meta(
    transaction: &tokio_postgres::Transaction<'_>,
    key: &str,
    snapshot: &Snapshot,
) -> Result<(), tokio_postgres::Error> {
    let known = if snapshot.target.is_some() { "1" } else { "0" };
    for (name, value) in [("manifest_sha256", snapshot.manifest_sha256.as_str()), ("target_known", known)] {
        upsert_meta(transaction, key, name, value).await?;
    }
    write_settled(transaction, key, snapshot.settled.as_ref()).await
}

async fn upsert_meta(
    transaction: &tokio_postgres::Transaction<'_>,
    key: &str,
    name: &str,
    value: &str,
) -> Result<(), tokio_postgres::Error> {
    transaction.execute(UPSERT_META, &[&key, &name, &value]).await.map(|_| ())
}

/// The settled plan and its baseline, the baseline's rows one per user.
async fn write_settled(
    transaction: &tokio_postgres::Transaction<'_>,
    key: &str,
    settled: Option<&super::Settled>,
) -> Result<(), tokio_postgres::Error> {
    upsert_meta(transaction, key, SETTLED, &decode::encode_settled(settled)).await?;
    let baseline = settled.and_then(|s| s.baseline.as_deref());
    upsert_meta(transaction, key, BASELINE, &decode::encode_baseline_head(baseline)).await?;
    for table in ["scimform_baseline_users", "scimform_baseline_values"] {
        transaction.execute(&format!("DELETE FROM {table} WHERE state_key = $1"), &[&key]).await?;
    }
    let Some(baseline) = baseline else { return Ok(()) };
    let keys: Vec<&str> = baseline.users.iter().map(|u| u.key.as_str()).collect();
    let fingerprints: Vec<[u8; 16]> = baseline.users.iter().map(|u| u.fingerprint.to_be_bytes()).collect();
    let fingerprints: Vec<&[u8]> = fingerprints.iter().map(<[u8; 16]>::as_slice).collect();
    let ids: Vec<Option<&str>> = baseline.users.iter().map(|u| u.id.as_deref()).collect();
    transaction
        .execute(
            "INSERT INTO scimform_baseline_users (state_key, key, fingerprint, id)
             SELECT $1, * FROM UNNEST($2::text[], $3::bytea[], $4::text[])",
            &[&key, &keys, &fingerprints, &ids],
        )
        .await?;
    let hashes: Vec<i64> = baseline.values.iter().map(|(hash, _)| decode::encode_value_hash(*hash)).collect();
    let ids: Vec<&str> = baseline.values.iter().map(|(_, id)| id.as_str()).collect();
    transaction
        .execute(
            "INSERT INTO scimform_baseline_values (state_key, hash, id) SELECT $1, * FROM UNNEST($2::bigint[], $3::text[])",
            &[&key, &hashes, &ids],
        )
        .await
        .map(|_| ())
}

/// The advisory lock's id for a key: the first 8 bytes of its sha256.
fn lock_id(key: &str) -> i64 {
    let digest = Sha256::digest(format!("scimform run lock {key}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// What a failed save says.
fn save_error(shown: &str) -> impl Fn(tokio_postgres::Error) -> StateError + '_ {
    move |e| StateError::Postgres {
        url: shown.to_owned(),
        detail: format!("cannot save the state: {}", crate::causes::causes(&e)),
    }
}

/// `url` without the query parameter `name`, and its value.
fn take_query_parameter(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_owned(), None) };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|part| match part.split_once('=') {
            Some((key, v)) if key == name => {
                value = Some(percent_decode(v));
                false
            }
            _ => true,
        })
        .collect();
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    (url, value)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL with its password, if any, replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
    match authority.rsplit_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => {
            // A password given as a query parameter.
            let path = path
                .split('&')
                .map(|part| match part.split_once("password=") {
                    Some((before, _)) => format!("{before}password=***"),
                    None => part.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{scheme}://{authority}{path}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(redact("postgres://scim:s3cret@127.0.0.1:5432/state"), "postgres://scim:***@127.0.0.1:5432/state");
        assert_eq!(redact("postgresql://scim@db/state?sslmode=disable"), "postgresql://scim@db/state?sslmode=disable");
        assert_eq!(redact("postgres://db/state?user=a&password=s3cret"), "postgres://db/state?user=a&password=***");
    }

    #[test]
    fn sslrootcert_is_taken_out_of_the_url() {
        assert_eq!(
            take_query_parameter("postgres://h/db?sslmode=require&sslrootcert=%2Fetc%2Fca.pem", "sslrootcert"),
            ("postgres://h/db?sslmode=require".to_owned(), Some("/etc/ca.pem".to_owned()))
        );
        assert_eq!(take_query_parameter("postgres://h/db?sslrootcert=ca.pem", "sslrootcert").0, "postgres://h/db");
        assert_eq!(take_query_parameter("postgres://h/db", "sslrootcert"), ("postgres://h/db".to_owned(), None));
    }

    #[test]
    fn lock_ids_differ_by_key() {
        assert_ne!(lock_id("a.yaml"), lock_id("b.yaml"));
        assert_eq!(lock_id("a.yaml"), lock_id("a.yaml"));
    }
}
