//! Reading on from the last run: whether its USN watermark still holds (the same domain
//! controller, no restore, not older than the tombstone lifetime). Pure.

use super::UsnWatermark;
use crate::source::SourceCache;

/// Whether the last run's cache can be read on from, and since which USN; else why not.
pub(super) fn resumable(
    previous: &SourceCache,
    now: Option<&UsnWatermark>,
    tombstone_days: u64,
) -> Result<u64, String> {
    let Some(now) = now else {
        return Err("the directory reports no `highestCommittedUSN`, so it cannot be read incrementally".into());
    };
    let Ok(last) = serde_json::from_value::<UsnWatermark>(previous.watermark.clone()) else {
        return Err("the state holds no USN watermark for this source".into());
    };
    if last.invocation_id != now.invocation_id {
        return Err(format!(
            "the domain controller's invocationID changed ({} -> {}): another DC, or a restored database",
            last.invocation_id, now.invocation_id
        ));
    }
    if now.usn < last.usn {
        return Err(format!("highestCommittedUSN went back ({} -> {})", last.usn, now.usn));
    }
    let days = now.read_at.saturating_sub(last.read_at) / 86_400;
    if last.read_at > 0 && days >= tombstone_days {
        return Err(format!(
            "the last read was {days} days ago, not less than the tombstone lifetime ({tombstone_days} days): deletions since may have left no trace"
        ));
    }
    Ok(last.usn + 1)
}
