//! Renderers: the same `Plan` shown for people (text) and, later, for pull requests and machines.
//! Renderers only read the plan; they never compute a change.

pub mod text;

pub use text::render_text;
