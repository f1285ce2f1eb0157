//! The manifest: the desired-state file. `parse` is pure (text in, checked model or every
//! problem out); `load` is the thin edge that reads the file and the real environment.

pub mod error;
pub mod graph_properties;
pub mod interpolate;
pub mod model;
pub mod raw;
pub mod raw_users;
mod validate;

use std::path::Path;

pub use error::{Diagnostic, ManifestError};
pub use interpolate::{Environment, MapEnvironment, Missing, SystemEnvironment};
pub use model::Manifest;

/// A manifest that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read manifest `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read manifest `{path}`")]
    NotUtf8 {
        path: String,
        #[source]
        source: crate::text::NotUtf8,
    },
    #[error(transparent)]
    Invalid(#[from] ManifestError),
}

/// Parses and checks a manifest. `origin` names it in messages; `base_dir` anchors relative paths.
pub fn parse(text: &str, origin: &str, env: &dyn Environment, base_dir: &Path) -> Result<Manifest, ManifestError> {
    Ok(parse_with(text, origin, env, base_dir, Missing::Error)?.0)
}

/// `parse`, with unresolved `${…}` counted as `missing` says; returns the warnings too.
pub fn parse_with(
    text: &str,
    origin: &str,
    env: &dyn Environment,
    base_dir: &Path,
    missing: Missing,
) -> Result<(Manifest, Vec<Diagnostic>), ManifestError> {
    let invalid = |(diagnostics, warnings)| ManifestError {
        origin: origin.to_owned(),
        text: text.to_owned(),
        diagnostics,
        warnings,
    };
    let root = crate::yaml::parse(text).map_err(|e| {
        // `{ token: ${env:X} }`: in a flow mapping or list, `{` and `}` are YAML's own.
        let line = text.lines().nth(e.location.line.saturating_sub(1)).unwrap_or_default();
        let hint = (line.contains("${") && e.message.contains("flow"))
            .then(|| "inside `{ … }` or `[ … ]`, quote a value that holds `${…}`: `\"${env:NAME}\"`".to_owned());
        invalid((
            vec![Diagnostic {
                location: e.location,
                key_path: String::new(),
                message: format!("YAML syntax error: {}", e.message),
                hint,
                width: None,
            }],
            Vec::new(),
        ))
    })?;
    let (mut manifest, warnings) = validate::validate(&root, env, base_dir, missing).map_err(invalid)?;
    manifest.sha256 = crate::scim::request::sha256_hex([text.as_bytes()]);
    Ok((manifest, warnings))
}

/// Reads a manifest file and checks it against the process environment.
pub fn load(path: &Path) -> Result<Manifest, LoadError> {
    Ok(load_with(path, Missing::Error)?.manifest)
}

/// A manifest read with its warnings, which keep its text to be shown located.
#[derive(Debug)]
pub struct Loaded {
    pub manifest: Manifest,
    /// Problems that did not stop it, as an error value (for its rendering) that is not one.
    pub warnings: Option<ManifestError>,
}

/// `load`, with unresolved `${…}` counted as `missing` says (`validate` runs without secrets).
#[expect(clippy::disallowed_methods, reason = "the manifest's one edge: reading the file")]
pub fn load_with(path: &Path, missing: Missing) -> Result<Loaded, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: path.display().to_string(), source })?;
    let text =
        crate::text::utf8(bytes).map_err(|source| LoadError::NotUtf8 { path: path.display().to_string(), source })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let env = SystemEnvironment { base_dir: base_dir.clone() };
    let origin = path.display().to_string();
    let (manifest, warnings) = parse_with(&text, &origin, &env, &base_dir, missing)?;
    let warnings =
        (!warnings.is_empty()).then(|| ManifestError { origin, text, diagnostics: warnings, warnings: Vec::new() });
    Ok(Loaded { manifest, warnings })
}
