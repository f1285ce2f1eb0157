//! Renderers: the same `Plan` shown for people (text, coloured on a terminal), for pull requests
//! (markdown) and for machines (JSON, see `plan::document`). Renderers only read the plan; they
//! never compute a change.

pub mod markdown;
pub mod text;

pub use markdown::render_markdown;
pub use text::{colorize, render_text};
