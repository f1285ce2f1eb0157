//! Mappings: how one SCIM attribute's value is computed from a source record.
//!
//! A mapping is a source attribute name (`givenName`), a constant (`true`, or
//! `{ constant: "Agent" }`), or a template (`"{{ mail | lower }}"`, `"{{ givenName }} {{ sn }}"`).
//! Templates are parsed once when the manifest loads; evaluation is pure.

pub mod eval;
pub mod filters;
pub mod functions;
pub mod template;

pub use eval::{EvalError, evaluate, evaluate_at};
pub use template::{Template, TemplateError};

use serde_json::Value;

/// One parsed mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapping {
    /// The value of a source attribute, looked up without regard to case.
    Attribute(String),
    /// A fixed value.
    Constant(Value),
    /// A template with expressions and filters.
    Template(Template),
    /// A source attribute naming another user of the same source (AD's `manager` DN, Graph's
    /// manager id): the value is that user's target id, resolved by the planner.
    Reference(String),
}

impl Mapping {
    /// Parses the short form written in a manifest: a template when it contains `{{`, otherwise
    /// an attribute name. Anything else is an error whose offset points into `text`.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.contains("{{") {
            return Template::parse(text).map(Mapping::Template);
        }
        if template::is_attribute_name(text) {
            return Ok(Mapping::Attribute(text.to_owned()));
        }
        Err(TemplateError {
            offset: 0,
            message: format!(
                "`{text}` is neither a source attribute name nor a template; \
                 write a constant as `{{ constant: \"{text}\" }}`"
            ),
        })
    }

    /// The source attributes this mapping reads, for sources that fetch only what is needed.
    pub fn attributes(&self) -> Vec<&str> {
        match self {
            Mapping::Attribute(name) | Mapping::Reference(name) => vec![name.as_str()],
            Mapping::Constant(_) => Vec::new(),
            Mapping::Template(template) => template.attributes(),
        }
    }

    /// Whether the mapping reads the run's clock (a template calling `now()`).
    pub fn reads_clock(&self) -> bool {
        matches!(self, Mapping::Template(template) if template.reads_clock())
    }
}

#[cfg(test)]
mod tests;
