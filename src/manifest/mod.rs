//! The manifest: the desired-state file. `parse` is pure (text in, checked model or every
//! problem out); `load` is the thin edge that reads the file and the real environment.

pub mod error;
pub mod graph_properties;
pub mod interpolate;
pub mod model;
pub mod raw;
mod validate;

use std::path::Path;

pub use error::{Diagnostic, ManifestError};
pub use interpolate::{Environment, MapEnvironment, SystemEnvironment};
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
    #[error(transparent)]
    Invalid(#[from] ManifestError),
}

/// Parses and checks a manifest. `origin` names it in messages; `base_dir` anchors relative paths.
pub fn parse(text: &str, origin: &str, env: &dyn Environment, base_dir: &Path) -> Result<Manifest, ManifestError> {
    let invalid = |diagnostics| ManifestError { origin: origin.to_owned(), text: text.to_owned(), diagnostics };
    let root = crate::yaml::parse(text).map_err(|e| {
        invalid(vec![Diagnostic {
            location: e.location,
            key_path: String::new(),
            message: format!("YAML syntax error: {}", e.message),
            hint: None,
            width: None,
        }])
    })?;
    let mut manifest = validate::validate(&root, env, base_dir).map_err(invalid)?;
    manifest.sha256 = crate::scim::request::sha256_hex([text.as_bytes()]);
    Ok(manifest)
}

/// Reads a manifest file and checks it against the process environment.
#[expect(clippy::disallowed_methods, reason = "the manifest's one edge: reading the file")]
pub fn load(path: &Path) -> Result<Manifest, LoadError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.display().to_string(), source })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let env = SystemEnvironment { base_dir: base_dir.clone() };
    Ok(parse(&text, &path.display().to_string(), &env, &base_dir)?)
}
