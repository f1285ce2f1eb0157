//! Manifest errors: every problem found, each with its location, key path and a hint.

use std::fmt::{self, Write};

use crate::yaml::{Location, Segment};

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub location: Location,
    /// Where in the document, e.g. `users.attributes."name.givenName"`.
    pub key_path: String,
    pub message: String,
    pub hint: Option<String>,
    /// How many characters the problem spans, when known (else the word at `location`).
    pub width: Option<usize>,
}

/// A manifest that could not be loaded. Holds its text so the report can show snippets.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ManifestError {
    /// The file as the user named it.
    pub origin: String,
    pub text: String,
    /// Sorted by location.
    pub diagnostics: Vec<Diagnostic>,
    /// Problems that alone would not have stopped it (`validate`'s unresolved `${…}`).
    pub warnings: Vec<Diagnostic>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.diagnostics.len() {
            1 => write!(f, "invalid manifest `{}`", self.origin),
            n => write!(f, "invalid manifest `{}` ({n} problems)", self.origin),
        }
    }
}

/// Renders a key path the way a user would write it: dotted, with keys that hold dots quoted.
pub fn key_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') && !k.is_empty() {
                    out.push_str(k);
                } else {
                    out.push_str(&serde_json::to_string(k).unwrap_or_else(|_| k.clone()));
                }
            }
        }
    }
    out
}

/// "did you mean `x`?" for the closest candidate, when one is close enough.
pub fn did_you_mean<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&given.to_ascii_lowercase(), &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}
