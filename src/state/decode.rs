//! The rows both stores keep, decoded from their text columns; an error is the detail of a
//! `StateError::Corrupt`.

use std::collections::{BTreeMap, BTreeSet};

use crate::current::{CurrentGroup, CurrentUser};
use crate::manifest::model::TargetGroupRef;
use crate::source::SourceCache;
use crate::source::cache::CachedGroup;

/// A user's row, keeping `managed` (every attribute when empty).
pub fn user(
    id: &str,
    version: Option<String>,
    resource: &str,
    managed: &[crate::scim::ScimPath],
) -> Result<CurrentUser, String> {
    let mut resource: serde_json::Value = serde_json::from_str(resource).map_err(|e| format!("user {id}: {e}"))?;
    if let Some(object) = resource.as_object_mut() {
        object.insert("id".into(), serde_json::Value::String(id.to_owned()));
    }
    let user = if managed.is_empty() {
        CurrentUser::from_resource(resource)
    } else {
        CurrentUser::keeping(&resource, managed)
    };
    let mut user = user.ok_or_else(|| format!("user {id}: not an object"))?;
    user.version = version;
    Ok(user)
}

pub fn group(
    reference: &str,
    id: String,
    display_name: String,
    version: Option<String>,
    members: &str,
) -> Result<(TargetGroupRef, CurrentGroup), String> {
    let reference = super::parse_reference(reference).ok_or_else(|| format!("group reference `{reference}`"))?;
    let members: BTreeSet<String> = serde_json::from_str(members).map_err(|e| format!("group {id}: {e}"))?;
    Ok((reference, CurrentGroup { id, display_name, members, version }))
}

/// A source's row, its records to come (`add_record`).
pub fn source(name: &str, watermark: &str, groups: &str) -> Result<SourceCache, String> {
    let watermark = serde_json::from_str(watermark).map_err(|e| format!("source {name}: {e}"))?;
    let groups: BTreeMap<String, CachedGroup> =
        serde_json::from_str(groups).map_err(|e| format!("source {name}: {e}"))?;
    Ok(SourceCache { watermark, users: std::sync::Arc::default(), groups })
}

/// Deprovision clocks: `{"<target id>": "<RFC 3339 time>"}`.
pub fn clocks(text: &str) -> Result<super::Clocks, String> {
    let raw: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| format!("deprovision clocks: {e}"))?;
    raw.into_iter()
        .map(|(id, at)| Ok((id, at.parse().map_err(|e| format!("deprovision clock of {at}: {e}"))?)))
        .collect()
}

/// `Snapshot::settled`: one that cannot be read (an older scimform's) is none, which only
/// costs a run in full.
pub fn settled(text: &str) -> Option<super::Settled> {
    serde_json::from_str(text).ok()
}

/// The baseline's meta row: what it has besides its rows. Unknown fields refuse it, so the
/// whole baseline an older scimform kept in that row is none.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineHead {
    scope: u128,
    hasher: u128,
}

/// A baseline user from its row: its key, fingerprint (16 bytes, big-endian) and target user;
/// `None` when the fingerprint is not 16 bytes.
pub fn baseline_user(key: String, fingerprint: &[u8], id: Option<String>) -> Option<crate::plan::delta::BaselineUser> {
    let fingerprint = u128::from_be_bytes(fingerprint.try_into().ok()?);
    Some(crate::plan::delta::BaselineUser { key, fingerprint, id })
}

/// `Settled::baseline` from its meta row and its rows, in any order: one that cannot be read
/// is none, which only costs a run in full.
pub fn baseline(
    head: &str,
    users: Vec<crate::plan::delta::BaselineUser>,
    values: Vec<(i64, String)>,
) -> Option<crate::plan::delta::Baseline> {
    let BaselineHead { scope, hasher } = serde_json::from_str(head).ok()?;
    let values = values.into_iter().map(|(hash, id)| (u64::from_be_bytes(hash.to_be_bytes()), id)).collect();
    Some(crate::plan::delta::Baseline::from_parts(users, values, scope, hasher))
}

/// The baseline's meta row (empty: none).
pub fn encode_baseline_head(baseline: Option<&crate::plan::delta::Baseline>) -> String {
    let head = baseline.map(|b| BaselineHead { scope: b.scope, hasher: b.hasher });
    head.and_then(|h| serde_json::to_string(&h).ok()).unwrap_or_default()
}

/// A hashed value as a signed 64-bit column holds it.
pub fn encode_value_hash(hash: u64) -> i64 {
    i64::from_be_bytes(hash.to_be_bytes())
}

pub fn encode_settled(settled: Option<&super::Settled>) -> String {
    settled.and_then(|s| serde_json::to_string(s).ok()).unwrap_or_default()
}

pub fn encode_clocks(clocks: &super::Clocks) -> String {
    let raw: BTreeMap<&String, String> = clocks.iter().map(|(id, at)| (id, at.to_string())).collect();
    serde_json::to_string(&raw).unwrap_or_default()
}

/// A record's row, added to its source's (rows come sorted by source and id).
pub fn add_record(
    sources: &mut BTreeMap<String, SourceCache>,
    source: &str,
    id: &str,
    record: &str,
) -> Result<(), String> {
    let cache = sources.get_mut(source).ok_or_else(|| format!("record {id} of no source"))?;
    let record = serde_json::from_str(record).map_err(|e| format!("record {id}: {e}"))?;
    std::sync::Arc::make_mut(&mut cache.users).push(record);
    Ok(())
}
