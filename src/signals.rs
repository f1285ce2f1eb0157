//! SIGINT and SIGTERM, as schedulers send them (Kubernetes stops a pod past its deadline with
//! SIGTERM). A run that is not writing stops at once; an apply that is writing sends no new
//! write, lets the ones in flight finish, and ends with its report and state (`lib.rs` bounds
//! that wait); a second signal ends the process at once. Signals are process-wide, so is this.
#![allow(clippy::disallowed_methods, reason = "signals are an edge")]

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The signal received, if any (its number), and whether an apply is writing.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static WRITING: AtomicBool = AtomicBool::new(false);

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    /// The exit code a shell gives a process the signal ended: 128 + its number.
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    fn number(self) -> i32 {
        i32::from(self.exit_code()) - 128
    }
}

/// The signal that asked the run to stop, once one did: no new write is sent after it.
pub fn interrupted() -> Option<Signal> {
    match RECEIVED.load(Ordering::SeqCst) {
        2 => Some(Signal::Interrupt),
        15 => Some(Signal::Terminate),
        _ => None,
    }
}

/// Records that `signal` asked the run to stop.
pub fn record(signal: Signal) {
    RECEIVED.store(signal.number(), Ordering::SeqCst);
}

/// An apply marks the span in which it writes: a signal then lets it wind down instead of
/// stopping it at once.
pub fn writing(on: bool) {
    WRITING.store(on, Ordering::SeqCst);
}

pub fn is_writing() -> bool {
    WRITING.load(Ordering::SeqCst)
}

/// The next SIGINT or SIGTERM.
pub async fn next() -> Signal {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
        else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => Signal::Interrupt,
            _ = terminate.recv() => Signal::Terminate,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Signal::Interrupt
    }
}
