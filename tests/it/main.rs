//! scimform's integration tests: one binary, so CI links once.

// Test support code panics on broken fixtures by design; the lints for product code do not apply.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

// Helpers: run the binary, temporary manifests, the embedded SCIM server.
mod common;

// The layering read from the code's imports, and ARCHITECTURE.md's paths.
mod architecture;
// Generated and shipped artefacts: the JSON schema and the examples.
mod artefacts;
// The command line: validate, plan exit codes, apply confirmation, secrets, the demo.
mod cli;
// The production SCIM client against wiremock: auth, retries, throttling, ETags, pacing.
mod client;
// A Graph source without a secret: certificate assertions and federated tokens.
mod entra_auth;
// The documentation, run: the README's walkthrough, the manifest reference against the schema.
mod docs;
// End to end: manifest + file source -> plan -> apply -> plan again, against a real HTTP server.
mod end_to_end;
// The GitOps workflow: saved plans, formats, deprovisioning rails, the run lock, focus, explain.
mod gitops;
// The Graph source against wiremock: paging, throttling, tokens, nested groups.
mod graph;
// The Microsoft Graph double: as strict as Graph's documentation, never more lenient.
mod graph_double;
// Entra's token endpoint for client assertions: signature, audience, expiry as Entra checks them.
mod token_double;
// A SCIM service that misbehaves: listings that never advance, repeat, never end, end short.
mod hostile;
// The LDAP source against Samba's AD DC: paging, ranges, nesting, escaping, TLS, errors.
mod ldap;
// The PostgreSQL state store against a real PostgreSQL: per-manifest snapshots, the advisory lock.
mod postgres;
// End to end against scim2-server, a third-party SCIM server.
mod scim2;
// Who is provisioned and how: scope, create-only mappings, match keys, delayed deletion, rails.
mod provisioning;
// Stopped by a scheduler: SIGTERM and SIGINT during an apply and a plan.
mod signals;
// The state file: planning against the last run's target, exact writes, fallback to full reads.
mod state;
// The SCIM client against the embedded server: paging, ETags, PATCH forms, group lookup.
mod service;
// The standing plan of a scheduled run against the plan made in full, over randomized changes.
mod settled;
