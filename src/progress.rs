//! Progress on stderr for long reads and applies (indicatif), shown only when stderr is a
//! terminal: a scheduled run's log stays free of spinner frames.

use std::borrow::Cow;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

const SPINNER: &str = "{spinner} {msg} ({elapsed})";
const COUNTER: &str = "{spinner} {msg}: {human_pos} ({elapsed})";
const BAR: &str = "{msg} [{bar:30}] {pos}/{len} ({elapsed}, {eta} left)";

/// One place on the terminal for every bar: the sources and the target are read at once.
static BARS: std::sync::OnceLock<MultiProgress> = std::sync::OnceLock::new();

/// Makes progress bars, visible or not.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    pub fn new(visible: bool) -> Self {
        Self { visible }
    }

    /// A spinner with a message and the elapsed time, e.g. while a source is read.
    pub fn spinner(self, message: impl Into<Cow<'static, str>>) -> ProgressBar {
        self.make(None, SPINNER, message)
    }

    /// A spinner that counts, e.g. users read from the target page by page.
    pub fn counter(self, message: impl Into<Cow<'static, str>>) -> ProgressBar {
        self.make(None, COUNTER, message)
    }

    /// A bar of `len` steps, e.g. the operations of an apply.
    pub fn bar(self, len: usize, message: impl Into<Cow<'static, str>>) -> ProgressBar {
        self.make(Some(len as u64), BAR, message)
    }

    fn make(self, len: Option<u64>, template: &str, message: impl Into<Cow<'static, str>>) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bars = BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let bar = bars.add(ProgressBar::new(len.unwrap_or(0)));
        if len.is_none() {
            bar.unset_length();
        }
        let style = ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style.progress_chars("=> "));
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_progress_draws_nothing() {
        let progress = Progress::new(false);
        for bar in [progress.spinner("a"), progress.counter("b"), progress.bar(3, "c")] {
            assert!(bar.is_hidden());
        }
    }

    #[test]
    fn every_template_parses() {
        // A typo in a template would silently fall back to the default style.
        for template in [SPINNER, COUNTER, BAR] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }
}
