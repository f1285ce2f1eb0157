//! How errors reach a person: `error:` with the cause chain as `Caused by:` lines and what to do
//! as a `hint:` line, and manifest problems with the offending line and a caret, like rustc, uv
//! and Terraform. An error type says its hint as data (a `hint()` method); this module is the
//! one place that prints it.

use std::error::Error;
use std::fmt::Write;

use crate::manifest::{Diagnostic, ManifestError};

/// An error with the errors that caused it and its hint, on one line (for a report, a warning,
/// a failed operation): libraries (reqwest, tokio-postgres) keep the reason out of their
/// message, a TLS handshake's say.
pub(crate) fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut text = crate::causes::causes(error);
    if let Some(hint) = hint_of(error) {
        text.push_str("; ");
        text.push_str(&hint);
    }
    text
}

/// `error_chain` for an `anyhow` error (its contexts included).
pub(crate) fn one_line(error: &anyhow::Error) -> String {
    let mut text = format!("{error:#}");
    if let Some(hint) = error.chain().find_map(hint_of_one) {
        text.push_str("; ");
        text.push_str(&hint);
    }
    text
}

/// What to do about an error: the hint of the first error in its chain that has one.
fn hint_of(error: &(dyn Error + 'static)) -> Option<String> {
    std::iter::successors(Some(error), |e| (*e).source()).find_map(hint_of_one)
}

/// The hint of one error, for the error types that carry one.
fn hint_of_one(error: &(dyn Error + 'static)) -> Option<String> {
    if let Some(e) = error.downcast_ref::<crate::source::SourceError>() {
        e.hint()
    } else if let Some(e) = error.downcast_ref::<crate::service::TargetError>() {
        e.hint()
    } else if let Some(e) = error.downcast_ref::<crate::state::StateError>() {
        e.hint()
    } else if let Some(e) = error.downcast_ref::<crate::lock::LockError>() {
        e.hint()
    } else if let Some(e) = error.downcast_ref::<crate::plan::document::DocumentError>() {
        e.hint()
    } else {
        None
    }
}

/// Renders any error with its chain of causes.
pub fn render_error(error: &anyhow::Error) -> String {
    if let Some(manifest) = error.downcast_ref::<ManifestError>() {
        return render_manifest_error(manifest);
    }
    if let Some(crate::manifest::LoadError::Invalid(manifest)) = error.downcast_ref::<crate::manifest::LoadError>() {
        return render_manifest_error(manifest);
    }
    let mut out = format!("error: {error}\n");
    for cause in error.chain().skip(1) {
        let _ = writeln!(out, "  Caused by: {cause}");
    }
    if let Some(hint) = error.chain().find_map(hint_of_one) {
        let _ = writeln!(out, "  hint: {hint}");
    }
    out
}

/// The error as one JSON log line: the chain as the message, the hint, and the rendered text's
/// lines as `details` (a manifest's problems, each with its location).
pub fn error_line(error: &anyhow::Error) -> String {
    let mut fields = serde_json::Map::new();
    if let Some(hint) = error.chain().find_map(hint_of_one) {
        fields.insert("hint".into(), hint.into());
    }
    let rendered = render_error(error);
    let details: Vec<String> =
        rendered.lines().skip(1).filter(|l| !l.trim().is_empty()).map(crate::logging::scrub).collect();
    if details.len() > 1 {
        fields.insert("details".into(), details.into());
    }
    crate::logging::json_line(crate::logging::Level::Error, &format!("{error:#}"), fields)
}

/// Every problem of a manifest, each with its location and source line.
pub fn render_manifest_error(error: &ManifestError) -> String {
    let mut out = render_diagnostics(format!("error: {error}\n"), error);
    if !error.warnings.is_empty() {
        let warnings = ManifestError { diagnostics: error.warnings.clone(), warnings: Vec::new(), ..error.clone() };
        out.push('\n');
        out.push_str(&render_manifest_warnings(&warnings));
    }
    out
}

/// A manifest's warnings (problems that did not stop it), located like its errors.
pub fn render_manifest_warnings(warnings: &ManifestError) -> String {
    let heading = match warnings.diagnostics.len() {
        1 => format!("warning: manifest `{}` has 1 warning\n", warnings.origin),
        n => format!("warning: manifest `{}` has {n} warnings\n", warnings.origin),
    };
    render_diagnostics(heading, warnings)
}

fn render_diagnostics(mut out: String, error: &ManifestError) -> String {
    let lines: Vec<&str> = error.text.lines().collect();
    for diagnostic in &error.diagnostics {
        out.push('\n');
        render_diagnostic(&mut out, &error.origin, &lines, diagnostic);
    }
    out
}

fn render_diagnostic(out: &mut String, origin: &str, lines: &[&str], d: &Diagnostic) {
    let at = if d.key_path.is_empty() { String::new() } else { format!(" (at `{}`)", d.key_path) };
    let number = d.location.line.to_string();
    let gutter = " ".repeat(number.len());
    let _ = writeln!(out, "{gutter}--> {origin}:{}:{}{at}", d.location.line, d.location.column);
    match lines.get(d.location.line.wrapping_sub(1)) {
        Some(line) => {
            let _ = writeln!(out, "{gutter} |");
            let _ = writeln!(out, "{number} | {line}");
            let start = d.location.column.saturating_sub(1);
            let word = || line.chars().skip(start).take_while(|c| !c.is_whitespace() && *c != ':' && *c != ',').count();
            let width = d.width.unwrap_or_else(word).max(1);
            let _ = writeln!(out, "{gutter} | {}{} {}", " ".repeat(start), "^".repeat(width), d.message);
        }
        None => {
            let _ = writeln!(out, "{gutter} | {}", d.message);
        }
    }
    if let Some(hint) = &d.hint {
        let _ = writeln!(out, "{gutter} = hint: {hint}");
    }
}
