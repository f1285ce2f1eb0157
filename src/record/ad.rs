//! Active Directory value formats (pure): `objectGUID`, `objectSid`, `userAccountControl`,
//! generalized time and FILETIME, and `member;range=` windows.

use std::fmt::Write;

/// `objectGUID` in AD's canonical text form. The 16 bytes hold a little-endian `u32`, two
/// little-endian `u16`s, then 8 bytes in order: `{0x67452301,0xab89,0xefcd,...}`.
pub fn guid_to_string(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

/// `objectSid` as `S-1-5-21-...` (MS-DTYP §2.4.2: revision, sub-authority count, a 48-bit
/// big-endian authority, then little-endian 32-bit sub-authorities).
pub fn sid_to_string(bytes: &[u8]) -> Option<String> {
    let (&revision, rest) = bytes.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let (authority, rest) = rest.split_at_checked(6)?;
    if rest.len() != usize::from(count) * 4 {
        return None;
    }
    let authority = authority.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut out = format!("S-{revision}-{authority}");
    for chunk in rest.chunks_exact(4) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let _ = write!(out, "-{sub}");
    }
    Some(out)
}

/// `userAccountControl` bit 0x2: ACCOUNTDISABLE.
pub fn is_disabled(user_account_control: &str) -> bool {
    user_account_control.trim().parse::<i64>().is_ok_and(|v| v & 0x2 != 0)
}

/// Generalized time (`20240131235959.0Z`) as RFC 3339 (`2024-01-31T23:59:59Z`).
pub fn generalized_time_to_rfc3339(text: &str) -> Option<String> {
    let digits = text.get(..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !text.ends_with('Z') {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &digits[..4],
        &digits[4..6],
        &digits[6..8],
        &digits[8..10],
        &digits[10..12],
        &digits[12..14]
    ))
}

/// A FILETIME (100 ns ticks since 1601, as in `accountExpires` or `pwdLastSet`) as RFC 3339;
/// `None` for 0 and for "never" (`0x7FFFFFFFFFFFFFFF`).
pub fn filetime_to_rfc3339(text: &str) -> Option<String> {
    const TICKS_PER_SECOND: i64 = 10_000_000;
    const UNIX_EPOCH_IN_FILETIME_SECONDS: i64 = 11_644_473_600;
    let ticks: i64 = text.trim().parse().ok()?;
    if ticks <= 0 || ticks == i64::MAX {
        return None;
    }
    let unix = ticks / TICKS_PER_SECOND - UNIX_EPOCH_IN_FILETIME_SECONDS;
    Some(rfc3339_from_unix(unix))
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn rfc3339_from_unix(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Attributes holding generalized time.
pub const GENERALIZED_TIME_ATTRIBUTES: &[&str] =
    &["whenCreated", "whenChanged", "createTimestamp", "modifyTimestamp", "dSCorePropagationData"];
/// Attributes holding a FILETIME.
pub const FILETIME_ATTRIBUTES: &[&str] =
    &["accountExpires", "pwdLastSet", "lastLogon", "lastLogonTimestamp", "badPasswordTime", "lockoutTime"];

/// The window an attribute name like `member;range=1500-2999` or `member;range=3000-*` covers:
/// `Some((1500, Some(2999)))`, `Some((3000, None))` for the last window.
pub fn parse_range(attribute: &str) -> Option<(usize, Option<usize>)> {
    let (_, range) = attribute.split_once(";range=").or_else(|| attribute.split_once(";Range="))?;
    let (low, high) = range.split_once('-')?;
    let low = low.parse().ok()?;
    let high = if high == "*" { None } else { Some(high.parse().ok()?) };
    Some((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_uses_the_mixed_endian_layout() {
        // The bytes of {5b8ed4ea-7d36-4cdf-9e12-c47576bb3893} as AD stores them.
        let bytes = [0xea, 0xd4, 0x8e, 0x5b, 0x36, 0x7d, 0xdf, 0x4c, 0x9e, 0x12, 0xc4, 0x75, 0x76, 0xbb, 0x38, 0x93];
        assert_eq!(guid_to_string(&bytes).as_deref(), Some("5b8ed4ea-7d36-4cdf-9e12-c47576bb3893"));
        assert_eq!(guid_to_string(&bytes[..15]), None);
    }

    #[test]
    fn sid_text_form() {
        // S-1-5-21-1004336348-1177238915-682003330-512
        let bytes = [
            1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xdc, 0xf4, 0xdc, 0x3b, 0x83, 0x3d, 0x2b, 0x46, 0x82, 0x8b, 0xa6,
            0x28, 0x00, 0x02, 0, 0,
        ];
        assert_eq!(sid_to_string(&bytes).as_deref(), Some("S-1-5-21-1004336348-1177238915-682003330-512"));
        assert_eq!(sid_to_string(&bytes[..10]), None);
    }

    #[test]
    fn account_disabled_bit() {
        assert!(is_disabled("514"));
        assert!(!is_disabled("512"));
        assert!(is_disabled("66050"));
        assert!(!is_disabled("junk"));
    }

    #[test]
    fn times() {
        assert_eq!(generalized_time_to_rfc3339("20240131235959.0Z").as_deref(), Some("2024-01-31T23:59:59Z"));
        assert_eq!(generalized_time_to_rfc3339("2024"), None);
        assert_eq!(filetime_to_rfc3339("133536384000000000").as_deref(), Some("2024-02-29T00:00:00Z"));
        assert_eq!(filetime_to_rfc3339("0"), None);
        assert_eq!(filetime_to_rfc3339("9223372036854775807"), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("member;range=0-1499"), Some((0, Some(1499))));
        assert_eq!(parse_range("member;range=3000-*"), Some((3000, None)));
        assert_eq!(parse_range("member"), None);
    }
}
