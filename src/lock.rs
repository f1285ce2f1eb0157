//! The run lock: two scheduled applies of one manifest never interleave. A lock file, created
//! atomically, names its holder (pid, host, start time); a holder that is gone (same host, no such
//! process) has its lock taken over with a warning. Removed when the run ends.
#![allow(clippy::disallowed_methods, reason = "the run lock is an edge: its file, the clock, the host name")]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// HTTP-date, for people.
    pub started: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on host `{}`, started {}", self.pid, self.host, self.started)
    }
}

/// A lock that could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another scimform run holds the lock `{path}`: {holder}")]
    Held { path: String, holder: Holder },
    #[error("the lock file `{path}` exists but does not say who holds it")]
    Unreadable { path: String },
    #[error("cannot create the lock file `{path}`")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl LockError {
    /// What to do, printed after the error and its causes.
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Held { .. } => Some(
                "wait for it to finish (or pass `--lock-timeout`); if that run is gone, remove the lock file".into(),
            ),
            LockError::Unreadable { .. } => Some("if no scimform run is going, remove it".into()),
            LockError::Io { .. } => None,
        }
    }
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock at `path`, taking over a dead holder's lock with a warning on `warn`.
    pub fn acquire(path: &Path, warn: &mut dyn Write) -> Result<Self, LockError> {
        let me = Holder { pid: std::process::id(), host: hostname(), started: now() };
        let display = path.display().to_string();
        // Twice at most: once, and once more after removing a dead holder's lock.
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    let text = serde_json::to_string(&me).unwrap_or_default();
                    file.write_all(text.as_bytes())
                        .and_then(|()| file.sync_all())
                        .map_err(|source| LockError::Io { path: display.clone(), source })?;
                    return Ok(Self { path: path.to_path_buf() });
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = read_holder(path).ok_or_else(|| LockError::Unreadable { path: display.clone() })?;
                    if holder.host != me.host || process_alive(holder.pid) {
                        return Err(LockError::Held { path: display, holder });
                    }
                    let _ =
                        writeln!(warn, "Warning: taking over the lock `{display}` of a run that is gone ({holder}).");
                    let _ = std::fs::remove_file(path);
                }
                Err(source) => return Err(LockError::Io { path: display, source }),
            }
        }
        let holder = read_holder(path).ok_or_else(|| LockError::Unreadable { path: display.clone() })?;
        Err(LockError::Held { path: display, holder })
    }

    /// `acquire`, waiting up to `wait` while another live run holds the lock.
    pub async fn acquire_within(
        path: &Path,
        warn: &mut dyn Write,
        wait: std::time::Duration,
    ) -> Result<Self, LockError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut said = false;
        loop {
            match Self::acquire(path, warn) {
                Err(LockError::Held { holder, .. }) if tokio::time::Instant::now() < deadline => {
                    if !said {
                        let _ = writeln!(
                            warn,
                            "Waiting up to {}s for the lock `{}` ({holder}).",
                            wait.as_secs(),
                            path.display()
                        );
                        said = true;
                    }
                    tokio::time::sleep(POLL.min(deadline - tokio::time::Instant::now())).await;
                }
                taken_or_failed => return taken_or_failed,
            }
        }
    }
}

/// How often a run waiting for the lock looks again.
const POLL: std::time::Duration = std::time::Duration::from_millis(250);

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[expect(clippy::disallowed_methods, reason = "the lock is an edge: it reads its own file")]
fn read_holder(path: &Path) -> Option<Holder> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

#[expect(clippy::disallowed_methods, reason = "the lock is an edge: it notes when it was taken")]
fn now() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

#[expect(clippy::disallowed_methods, reason = "the lock is an edge: it reads the host's name")]
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Whether a process runs on this host. Where that cannot be told, it is assumed to run: a lock
/// is never taken from a live run.
fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") { Path::new(&format!("/proc/{pid}")).exists() } else { true }
}

#[cfg(test)]
#[expect(clippy::disallowed_methods, reason = "tests write lock files by hand")]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_run_waits_for_the_lock_when_asked_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        let held = RunLock::acquire(&path, &mut Vec::new()).unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            drop(held);
        });
        let mut said = Vec::new();
        let taken = RunLock::acquire_within(&path, &mut said, std::time::Duration::from_secs(10)).await;
        assert!(taken.is_ok(), "{taken:?}");
        assert!(String::from_utf8(said).unwrap().starts_with("Waiting up to 10s for the lock"));
        release.await.unwrap();
        // Without time to wait, a held lock is an error at once.
        let error = RunLock::acquire_within(&path, &mut Vec::new(), std::time::Duration::ZERO).await.unwrap_err();
        assert!(error.to_string().starts_with("another scimform run holds the lock"), "{error}");
    }

    #[test]
    fn a_held_lock_names_its_holder_and_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml.lock");
        let lock = RunLock::acquire(&path, &mut Vec::new()).unwrap();
        let error = RunLock::acquire(&path, &mut Vec::new()).unwrap_err();
        assert!(error.hint().is_some_and(|hint| hint.contains("remove the lock file")), "{error:?}");
        let error = error.to_string();
        assert!(error.contains(&format!("pid {}", std::process::id())), "{error}");
        assert!(error.contains(&hostname()), "{error}");
        drop(lock);
        assert!(!path.exists());
        RunLock::acquire(&path, &mut Vec::new()).unwrap();
    }

    #[test]
    fn a_dead_holders_lock_is_taken_over_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml.lock");
        // pid_max on Linux is at most 2^22: this pid cannot run.
        let dead = Holder { pid: 4_194_305, host: hostname(), started: "earlier".into() };
        std::fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        let mut warnings = Vec::new();
        let _lock = RunLock::acquire(&path, &mut warnings).unwrap();
        let warnings = String::from_utf8(warnings).unwrap();
        assert!(warnings.contains("taking over the lock") && warnings.contains("pid 4194305"), "{warnings}");
    }

    #[test]
    fn a_lock_from_another_host_is_never_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml.lock");
        let other = Holder { pid: 4_194_305, host: "elsewhere".into(), started: "earlier".into() };
        std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
        let error = RunLock::acquire(&path, &mut Vec::new()).unwrap_err().to_string();
        assert!(error.contains("host `elsewhere`"), "{error}");
        std::fs::write(&path, "garbage").unwrap();
        let error = RunLock::acquire(&path, &mut Vec::new()).unwrap_err().to_string();
        assert!(error.contains("does not say who holds it"), "{error}");
    }
}
