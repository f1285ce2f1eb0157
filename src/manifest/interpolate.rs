//! `${env:NAME}` and `${file:PATH}` in manifest values. Lookups go through `Environment`, so the
//! loader stays testable and the demo can supply its own values. `$$` is a literal `$`.
//!
//! Every scalar value of a manifest is interpolated, outside `{{ … }}` templates, before it is
//! checked; an interpolated value is always a string. Errors name the variable or the file,
//! never a value that was read.

use std::path::{Path, PathBuf};

/// Where interpolated values come from.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &Path) -> std::io::Result<String>;
}

/// The process environment and the file system, with `${file:...}` relative to `base_dir`.
#[derive(Debug, Clone)]
pub struct SystemEnvironment {
    pub base_dir: PathBuf,
}

impl Environment for SystemEnvironment {
    #[expect(clippy::disallowed_methods, reason = "`${env:...}` reads the environment by design")]
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    #[expect(clippy::disallowed_methods, reason = "`${file:...}` reads a file by design")]
    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(self.base_dir.join(path))
    }
}

/// A fixed set of variables and no files: for the demo and for tests.
#[derive(Debug, Clone, Default)]
pub struct MapEnvironment(pub std::collections::BTreeMap<String, String>);

impl Environment for MapEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    fn read_file(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no file `{}` here", path.display())))
    }
}

/// How a reference that cannot be resolved (an unset variable, a missing file) counts: an
/// error for `plan` and `apply`, a warning for `validate`, which runs without the secrets (a
/// pull request's checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Error,
    Warning,
}

/// Why a value could not be interpolated; `offset` points at the `${` in the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    pub offset: usize,
    /// Length of the offending reference, in characters.
    pub len: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Replaces every `${env:NAME}` and `${file:PATH}` in `text`; the first problem is the error.
pub fn interpolate(text: &str, env: &dyn Environment) -> Result<String, InterpolationError> {
    let mut problems = Vec::new();
    let value = expand(text, env, &mut problems);
    match problems.into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(value),
    }
}

/// Interpolates a manifest value outside its `{{ … }}` templates, which stay as written (a
/// template's `$` is the template's own). Every reference that cannot be resolved is a problem
/// and stays in the value as written; offsets are into `text`.
pub fn interpolate_value(text: &str, env: &dyn Environment) -> (String, Vec<InterpolationError>) {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let (plain_end, template_end) = match text[at..].find("{{") {
            Some(open) => {
                let open = at + open;
                let close = text[open..].find("}}").map_or(text.len(), |c| open + c + 2);
                (open, close)
            }
            None => (text.len(), text.len()),
        };
        let mut found = Vec::new();
        out.push_str(&expand(&text[at..plain_end], env, &mut found));
        problems.extend(found.into_iter().map(|p| InterpolationError { offset: p.offset + at, ..p }));
        out.push_str(&text[plain_end..template_end]);
        at = template_end;
    }
    (out, problems)
}

/// Replaces the references in `text`; a reference that cannot be resolved is pushed onto
/// `problems` and kept as written.
fn expand(text: &str, env: &dyn Environment, problems: &mut Vec<InterpolationError>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut consumed = 0;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let offset = consumed + dollar;
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            consumed += dollar + 2;
            rest = stripped;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            consumed += dollar + 1;
            rest = after;
            continue;
        };
        let Some(close) = body.find('}') else {
            problems.push(InterpolationError {
                offset,
                len: 2,
                message: "`${` is never closed by `}`".into(),
                hint: Some("write `$$` for a literal `$`".into()),
            });
            out.push_str(&rest[dollar..]);
            return out;
        };
        let reference = &body[..close];
        let len = reference.chars().count() + 3;
        let value = match reference.split_once(':') {
            Some(("env", name)) if !name.is_empty() => env.var(name).ok_or_else(|| InterpolationError {
                offset,
                len,
                message: format!("environment variable `{name}` is not set"),
                hint: Some(format!("set `{name}` in the environment that runs scimform")),
            }),
            Some(("file", path)) if !path.is_empty() => env
                .read_file(Path::new(path))
                .map(|content| content.trim_end_matches(['\n', '\r']).to_owned())
                .map_err(|e| InterpolationError {
                    offset,
                    len,
                    message: format!("cannot read `{path}` for `${{file:{path}}}`: {}", e.kind()),
                    hint: Some("paths are relative to the manifest's directory".into()),
                }),
            _ => Err(InterpolationError {
                offset,
                len,
                message: format!("`${{{reference}}}` is not a known reference"),
                hint: Some("use `${env:NAME}` or `${file:PATH}`".into()),
            }),
        };
        match value {
            Ok(value) => out.push_str(&value),
            Err(problem) => {
                problems.push(problem);
                out.push_str(&rest[dollar..=dollar + 2 + close]);
            }
        }
        consumed += dollar + 2 + close + 1;
        rest = &body[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> MapEnvironment {
        MapEnvironment([("TOKEN".to_owned(), "s3cret".to_owned())].into_iter().collect())
    }

    #[test]
    fn replaces_references() {
        assert_eq!(interpolate("Bearer ${env:TOKEN}!", &env()).unwrap(), "Bearer s3cret!");
        assert_eq!(interpolate("a $$ b $x", &env()).unwrap(), "a $ b $x");
    }

    #[test]
    fn errors_name_the_variable_not_a_value() {
        let error = interpolate("x ${env:MISSING}", &env()).unwrap_err();
        assert_eq!(error.offset, 2);
        assert_eq!(error.message, "environment variable `MISSING` is not set");
        assert!(interpolate("${env:TOKEN", &env()).unwrap_err().message.contains("never closed"));
        assert!(interpolate("${vault:x}", &env()).unwrap_err().message.contains("not a known reference"));
        assert!(interpolate("${file:nope}", &env()).unwrap_err().message.contains("cannot read `nope`"));
    }

    #[test]
    fn templates_are_left_as_written_and_every_problem_is_found() {
        let (value, problems) =
            interpolate_value("{{ mail }}@${env:TOKEN} {{ x | replace('$$', '${env:NO}') }}", &env());
        assert_eq!(value, "{{ mail }}@s3cret {{ x | replace('$$', '${env:NO}') }}");
        assert!(problems.is_empty());
        let (value, problems) = interpolate_value("${env:A}-{{ id }}-${env:B}", &env());
        assert_eq!(value, "${env:A}-{{ id }}-${env:B}", "unresolved references stay as written");
        let offsets: Vec<usize> = problems.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [0, 18]);
    }
}
