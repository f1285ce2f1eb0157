//! The plan as a versioned JSON document: what `plan --out FILE` saves, what `apply FILE` reads
//! back, and what `plan --format json` prints for machines and policy checks. One format, so a
//! policy check reads exactly what apply will run.
//!
//! Stable: fields print in declaration order, maps sorted, no timestamps; the same inputs give
//! byte-identical documents. A change to the meaning of a field bumps `FORMAT_VERSION`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Plan, Summary};

/// The version of this document's shape.
pub const FORMAT_VERSION: u32 = 1;

/// A plan with what it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanDocument {
    pub format_version: u32,
    /// The scimform that made the plan; another version refuses to apply it.
    pub scimform_version: String,
    pub manifest: ManifestRef,
    /// Counts, for readers that do not want to walk the plan.
    pub summary: Summary,
    pub plan: Plan,
}

/// The manifest a plan was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    /// As given on the command line when planning; `apply FILE` reads it from there.
    pub path: String,
    /// The sha256 of its text.
    pub sha256: String,
}

/// A plan file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("this is not a scimform plan file: {0}")]
    NotAPlan(String),
    #[error("the plan file has format_version {found}; this scimform ({ours}) reads format_version {FORMAT_VERSION}")]
    FormatVersion { found: u64, ours: &'static str },
    #[error("the plan was made by scimform {found}, and this is scimform {ours}")]
    ToolVersion { found: String, ours: &'static str },
}

impl DocumentError {
    /// What to do, printed after the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            DocumentError::NotAPlan(_) => Some("give a file written by `scimform plan --out`".into()),
            DocumentError::FormatVersion { .. } | DocumentError::ToolVersion { .. } => {
                Some("plan again with this version".into())
            }
        }
    }
}

impl PlanDocument {
    /// The document for a plan made now, by this scimform.
    pub fn new(mut plan: Plan, manifest_path: &str, manifest_sha256: &str) -> Self {
        // Which users are gone is what a fresh apply folds its clocks with; a saved plan holds
        // only what it sends.
        plan.gone.clear();
        Self {
            format_version: FORMAT_VERSION,
            scimform_version: env!("CARGO_PKG_VERSION").to_owned(),
            manifest: ManifestRef { path: manifest_path.to_owned(), sha256: manifest_sha256.to_owned() },
            summary: plan.summary(),
            plan,
        }
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads a document back, refusing other format versions and other scimform versions before
    /// looking at anything else (a plan from another version may mean something else).
    pub fn from_json(text: &str) -> Result<Self, DocumentError> {
        let value: Value = serde_json::from_str(text).map_err(|e| DocumentError::NotAPlan(e.to_string()))?;
        let found = value
            .get("format_version")
            .and_then(Value::as_u64)
            .ok_or_else(|| DocumentError::NotAPlan("it has no `format_version`".into()))?;
        if found != u64::from(FORMAT_VERSION) {
            return Err(DocumentError::FormatVersion { found, ours: env!("CARGO_PKG_VERSION") });
        }
        let tool = value.get("scimform_version").and_then(Value::as_str).unwrap_or_default();
        if tool != env!("CARGO_PKG_VERSION") {
            return Err(DocumentError::ToolVersion { found: tool.to_owned(), ours: env!("CARGO_PKG_VERSION") });
        }
        serde_json::from_value(value).map_err(|e| DocumentError::NotAPlan(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::render::text::tests::realistic_plan;

    fn document() -> PlanDocument {
        PlanDocument::new(realistic_plan(), "examples/quickstart/scimform.yaml", "ab12")
    }

    #[test]
    fn renders_a_realistic_plan_as_json() {
        insta::assert_snapshot!(document().to_json());
    }

    #[test]
    fn the_json_round_trips() {
        let original = document();
        let text = original.to_json();
        let back = PlanDocument::from_json(&text).unwrap();
        assert_eq!(back, original);
        assert_eq!(back.to_json(), text, "reading and writing again changes no byte");
    }

    #[test]
    fn other_versions_are_refused_first() {
        let text = document().to_json();
        let other_format = text.replace("\"format_version\": 1", "\"format_version\": 2");
        let error = PlanDocument::from_json(&other_format).unwrap_err();
        assert!(error.to_string().contains("format_version 2"), "{error}");
        assert_eq!(error.hint().as_deref(), Some("plan again with this version"));

        let ours = format!("\"scimform_version\": \"{}\"", env!("CARGO_PKG_VERSION"));
        let other_tool = text.replace(&ours, "\"scimform_version\": \"0.0.1-old\"");
        let error = PlanDocument::from_json(&other_tool).unwrap_err().to_string();
        assert!(error.contains("made by scimform 0.0.1-old"), "{error}");

        let error = PlanDocument::from_json("users: []").unwrap_err().to_string();
        assert!(error.contains("not a scimform plan file"), "{error}");
    }
}
