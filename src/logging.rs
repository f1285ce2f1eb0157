//! What scimform says on stderr, as text for a person or as JSON lines for a log shipper.
//!
//! Text: tracing's events without time or target (`-v` adds the request lines, `-q` keeps
//! errors, `RUST_LOG` decides in full). JSON (`--log-format json`): every line on stderr is one
//! object with `timestamp`, `level` and `message`: tracing's events (the request lines carry
//! `method`, `path` as a template, `status`, `attempt` and `duration_ms`), and every line the
//! commands write, through [`JsonLines`]. A person's attribute values never reach a JSON line:
//! the commands' structured lines name resources by kind and target id, and text in double
//! quotes (how scimform quotes a user's or a group's name) is replaced by `"…"`.
#![allow(clippy::disallowed_methods, reason = "a log line is dated by the clock")]

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether stderr takes JSON lines, for the one writer that has no `Console` (the signal watcher).
static JSON: AtomicBool = AtomicBool::new(false);

/// Writes one line to stderr in the run's log format.
pub fn say(line: &str) {
    let mut err = std::io::stderr();
    let _ = if JSON.load(Ordering::Relaxed) {
        err.write_all(json_line(Level::Warn, line.trim(), serde_json::Map::new()).as_bytes())
    } else {
        writeln!(err, "{line}")
    };
}

/// Sets up tracing's subscriber for the run.
pub fn init(verbose: bool, quiet: bool, rust_log: Option<String>, json: bool) {
    JSON.store(json, Ordering::Relaxed);
    let level = match (verbose, quiet) {
        (true, _) => "info",
        (_, true) => "error",
        _ => "warn",
    };
    let filter = rust_log
        .and_then(|directives| tracing_subscriber::EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init()
    } else {
        // The fields are for the JSON form; the text form says them in its message.
        builder
            .without_time()
            .fmt_fields(tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
                if field.name() == "message" { write!(writer, "{value:?}") } else { Ok(()) }
            }))
            .try_init()
    };
}

/// A log line's level, as tracing's JSON spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// One JSON log line (with its newline): `timestamp`, `level`, `message`, then `fields`.
pub fn json_line(level: Level, message: &str, fields: serde_json::Map<String, serde_json::Value>) -> String {
    let mut object = serde_json::Map::new();
    object.insert("timestamp".into(), jiff::Timestamp::now().to_string().into());
    object.insert("level".into(), level.as_str().into());
    object.insert("message".into(), scrub(message).into());
    object.extend(fields);
    format!("{}\n", serde_json::Value::Object(object))
}

/// `message` with every quoted span (`"…"` or `` `…` ``) replaced by `…`: scimform quotes the
/// names of users, members and records that way (`user "ann@x"`, ``member `ann@x` ``), and a log
/// shipper is no place for them. What to run (`` `scimform …` ``, `` `--refresh` ``) stays.
pub fn scrub(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=start]);
        let inside = &rest[start + 1..];
        let Some(end) = inside.find(quote) else {
            out.push('…');
            return out;
        };
        let span = &inside[..end];
        if quote == '`' && (span.starts_with("scimform ") || span.starts_with("--")) {
            out.push_str(span);
        } else {
            out.push('…');
        }
        out.push(quote);
        rest = &inside[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A writer that turns each line the commands write into a JSON log line; a line that already is
/// one (it starts with `{`) passes as it is. Blank lines, which only space out text, are dropped.
pub struct JsonLines<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> JsonLines<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, pending: Vec::new() }
    }

    fn emit(&mut self, line: &[u8]) -> std::io::Result<()> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        if text.trim().is_empty() {
            return Ok(());
        }
        if text.starts_with('{') {
            return writeln!(self.inner, "{text}");
        }
        let (level, message) = if let Some(rest) = text.strip_prefix("Warning:") {
            (Level::Warn, rest.trim())
        } else if let Some(rest) = text.strip_prefix("Error:").or_else(|| text.strip_prefix("error:")) {
            (Level::Error, rest.trim())
        } else {
            (Level::Info, text.trim())
        };
        self.inner.write_all(json_line(level, message, serde_json::Map::new()).as_bytes())
    }
}

impl<W: Write> Write for JsonLines<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line)?;
        }
        Ok(buf.len())
    }

    /// A line without its newline (a prompt) is a line of its own once flushed.
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line)?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for JsonLines<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// `PATCH`, `/Users/{id}` from a request label (`PATCH /Users/2819c223`, `Graph GET
/// /v1.0/groups/abc/members`): ids after a collection become `{id}`, so a path says what was
/// asked for, never whom.
pub fn request_fields(label: &str) -> (&str, String) {
    let label = label.strip_prefix("Graph ").unwrap_or(label);
    let (method, path) = label.split_once(' ').unwrap_or(("", label));
    let path = path.split('?').next().unwrap_or_default();
    let mut template = Vec::new();
    let mut after_collection = false;
    for segment in path.split('/') {
        let collection = ["users", "groups", "serviceprincipals", "directoryobjects"]
            .iter()
            .any(|c| segment.eq_ignore_ascii_case(c));
        if after_collection && !segment.is_empty() && !segment.eq_ignore_ascii_case("delta") {
            template.push("{id}");
        } else {
            template.push(segment);
        }
        after_collection = collection;
    }
    (method, template.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_names_are_scrubbed() {
        assert_eq!(scrub(r#"user "alice@x" created"#), r#"user "…" created"#);
        assert_eq!(scrub("group `Sales`: member `ann@x` skipped"), "group `…`: member `…` skipped");
        assert_eq!(scrub("run `scimform plan` or pass `--refresh`"), "run `scimform plan` or pass `--refresh`");
        assert_eq!(scrub(r#"open "quote"#), r#"open "…"#);
        assert_eq!(scrub("Zoë `Åström` ok"), "Zoë `…` ok");
    }

    #[test]
    fn request_paths_are_templates() {
        assert_eq!(request_fields("PATCH /Users/2819c223-7f76"), ("PATCH", "/Users/{id}".to_owned()));
        assert_eq!(request_fields("GET /Users"), ("GET", "/Users".to_owned()));
        assert_eq!(
            request_fields("Graph GET /v1.0/groups/00aa/transitiveMembers/microsoft.graph.user"),
            ("GET", "/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user".to_owned())
        );
        assert_eq!(request_fields("Graph GET /v1.0/users/delta"), ("GET", "/v1.0/users/delta".to_owned()));
    }

    #[test]
    fn every_line_becomes_one_object_and_a_prompt_is_flushed_as_a_line() {
        let mut out = Vec::new();
        {
            let mut lines = JsonLines::new(&mut out);
            write!(lines, "\nWarning: taking over\nuser \"bob\": PATCH").unwrap();
            writeln!(lines, " /Users/1 -> 204").unwrap();
            write!(lines, "Enter a value: ").unwrap();
            lines.flush().unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let objects: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(objects.len(), 3, "{text}");
        assert_eq!(objects[0]["level"], "WARN");
        assert_eq!(objects[0]["message"], "taking over");
        assert_eq!(objects[1]["message"], "user \"…\": PATCH /Users/1 -> 204");
        assert_eq!(objects[2]["message"], "Enter a value:");
        assert!(objects.iter().all(|o| o["timestamp"].as_str().is_some_and(|t| t.ends_with('Z'))));
    }
}
