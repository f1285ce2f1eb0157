//! The run lock: two scheduled applies of one manifest never interleave. An advisory lock the
//! kernel holds on the lock file (`flock`), so it ends with the process however that ends: a
//! pod killed at its deadline leaves no lock behind, and the next pod, on another host, takes it
//! at once. The file also names its holder (pid, host, start time) for the "held by" message.
//! What it cannot protect: two machines sharing the file over a network file system that does not
//! pass advisory locks on; use the PostgreSQL state there, whose advisory lock is the run lock.
#![allow(clippy::disallowed_methods, reason = "the run lock is an edge: its file, the clock, the host name")]

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
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
    #[error("another scimform run holds the lock `{path}`: {}", .holder.as_ref().map_or_else(|| "it does not say who".to_owned(), ToString::to_string))]
    Held { path: String, holder: Option<Holder> },
    #[error("cannot use the lock file `{path}`")]
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
                "wait for it to finish (or pass `--lock-timeout`); the lock ends with that process, however it ends"
                    .into(),
            ),
            LockError::Io { .. } => None,
        }
    }
}

/// A held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    /// The kernel's lock lives as long as this open file.
    file: File,
}

impl RunLock {
    /// Takes the lock at `path`, or says who holds it. A file left by a run that is gone (its
    /// kernel lock went with it) is taken over, with a warning on `warn`.
    pub fn acquire(path: &Path, warn: &mut dyn Write) -> Result<Self, LockError> {
        let display = path.display().to_string();
        let io = |source| LockError::Io { path: display.clone(), source };
        // Twice at most: a file removed by its releasing holder between our open and our lock is
        // opened again.
        for _ in 0..3 {
            let mut file =
                OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::Held { path: display, holder: read_holder(&mut file) });
                }
                Err(TryLockError::Error(source)) => return Err(io(source)),
            }
            if !same_file(path, &file) {
                continue;
            }
            if let Some(gone) = read_holder(&mut file) {
                let _ =
                    writeln!(warn, "Warning: taking over the lock `{display}` left by a run that is gone ({gone}).");
            }
            let me = Holder { pid: std::process::id(), host: hostname(), started: now() };
            let text = serde_json::to_string(&me).unwrap_or_default();
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(text.as_bytes()))
                .and_then(|()| file.sync_all())
                .map_err(io)?;
            return Ok(Self { path: path.to_path_buf(), file });
        }
        Err(LockError::Held { path: display, holder: None })
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
                        let who = holder.map(|h| format!(" ({h})")).unwrap_or_default();
                        let _ =
                            writeln!(warn, "Waiting up to {}s for the lock `{}`{who}.", wait.as_secs(), path.display());
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
        // Removed while still locked, so a run that opened it meanwhile sees, once it has the
        // lock, that the path is no longer its file, and opens it again.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether `path` is still the file `file` has open (not removed and made again since).
fn same_file(path: &Path, file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(path), file.metadata()) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, file);
        true
    }
}

/// The holder a lock file names, if it names one.
fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
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
        assert!(error.hint().is_some_and(|hint| hint.contains("wait for it to finish")), "{error:?}");
        let error = error.to_string();
        assert!(error.contains(&format!("pid {}", std::process::id())), "{error}");
        assert!(error.contains(&hostname()), "{error}");
        drop(lock);
        assert!(!path.exists());
        RunLock::acquire(&path, &mut Vec::new()).unwrap();
    }

    /// The file a pod on another host left when it was killed: its kernel lock went with it, so
    /// the next run takes the lock at once, saying whose it was.
    #[test]
    fn a_file_left_by_a_run_on_another_host_is_taken_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml.lock");
        let gone = Holder { pid: 7, host: "scimform-28391-xk2p9".into(), started: "earlier".into() };
        std::fs::write(&path, serde_json::to_string(&gone).unwrap()).unwrap();
        let mut warnings = Vec::new();
        let lock = RunLock::acquire(&path, &mut warnings).unwrap();
        let warnings = String::from_utf8(warnings).unwrap();
        assert!(
            warnings.contains("taking over the lock") && warnings.contains("host `scimform-28391-xk2p9`"),
            "{warnings}"
        );
        let now: Holder = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(now.pid, std::process::id(), "the file names the new holder");
        // A file that says nothing is taken too, silently.
        drop(lock);
        std::fs::write(&path, "garbage").unwrap();
        let mut warnings = Vec::new();
        RunLock::acquire(&path, &mut warnings).unwrap();
        assert!(warnings.is_empty());
    }
}
