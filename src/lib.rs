//! scimform: declarative identity provisioning over SCIM 2.0.
//!
//! ```text
//! manifest ──> sources ──> desired state ─┐
//!                                         ├──> plan (pure diff) ──> render (text)
//! target (SCIM) ──> current state ────────┘                  └──> apply ──> target (SCIM)
//! ```
//!
//! Modules in pipeline order. `yaml`, `manifest` (parsing and checks), `mapping`, `scim`,
//! `desired` and `plan` do no I/O; `source`, `target` and `apply` are the edges.

pub mod yaml;
pub mod secret;
pub mod manifest;
pub mod mapping;
pub mod scim;
pub mod source;
