//! The text functions behind the template filters, modelled on Entra ID's expression functions
//! (`Replace`, `Left`, `Mid`, `StripSpaces`, `NormalizeDiacritics`, `Switch`, `FormatDateTime`,
//! …). Pure, each on plain strings, so each is tested on its own.

use std::str::FromStr;

use jiff::Timestamp;
use phonenumber::Mode;
use phonenumber::country::Id as Region;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::record::ad;

/// The first `n` characters (not bytes).
pub fn left(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

/// `len` characters from the 1-based position `start`, as Entra's `Mid`.
pub fn mid(text: &str, start: usize, len: usize) -> String {
    text.chars().skip(start.saturating_sub(1)).take(len).collect()
}

/// Removes every whitespace character.
pub fn strip_spaces(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Removes accents (`Zoë Åström` -> `Zoe Astrom`) and spells out letters that do not decompose
/// (`ß` -> `ss`, `ø` -> `o`, `æ` -> `ae`, `ł` -> `l`).
pub fn normalize_diacritics(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfd().filter(|c| !is_combining_mark(*c)) {
        match c {
            'ß' => out.push_str("ss"),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            'đ' | 'ð' => out.push('d'),
            'Đ' | 'Ð' => out.push('D'),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'þ' => out.push_str("th"),
            'Þ' => out.push_str("Th"),
            'ı' => out.push('i'),
            c => out.push(c),
        }
    }
    out
}

/// The value `cases` pairs with `text` (exact match), else `default`.
pub fn switch<'a>(text: &str, default: &'a str, cases: &'a [(String, String)]) -> &'a str {
    cases.iter().find(|(key, _)| key == text).map_or(default, |(_, value)| value.as_str())
}

/// A date or time from a source as the template's `format` (strftime, in UTC), e.g. `%Y-%m-%d`.
/// Understands RFC 3339 (what the LDAP source makes of AD's times), plain dates, AD generalized
/// time (`20240131123000.0Z`) and AD FILETIME (`133512345670000000`).
pub fn format_date(text: &str, format: &str) -> Result<String, String> {
    let timestamp = parse_date(text)?;
    jiff::fmt::strtime::format(format, timestamp).map_err(|e| format!("cannot format `{text}` as `{format}`: {e}"))
}

/// A date or time in any form `format_date` reads.
fn parse_date(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    let rfc3339 = if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        format!("{text}T00:00:00Z")
    } else if let Some(converted) = ad::generalized_time_to_rfc3339(text) {
        converted
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        ad::filetime_to_rfc3339(text).ok_or_else(|| format!("`{text}` is not a date"))?
    } else {
        text.to_owned()
    };
    Timestamp::from_str(&rfc3339).map_err(|_| format!("`{text}` is not a date"))
}

/// A date moved by `days` (negative: back), as an RFC 3339 time (Entra's `DateAdd("d", …)`).
pub fn date_add(text: &str, days: i64) -> Result<String, String> {
    let moved = parse_date(text)?
        .checked_add(jiff::SignedDuration::from_hours(days.saturating_mul(24)))
        .map_err(|_| format!("`{text}` moved by {days} days is out of range"))?;
    Ok(moved.to_string())
}

/// Whole days from `from` to `to` (negative when `to` is earlier), as Entra's `DateDiff("d", …)`.
pub fn date_diff(from: &str, to: &str) -> Result<i64, String> {
    Ok(parse_date(to)?.duration_since(parse_date(from)?).as_secs() / 86_400)
}

/// Each word's first letter upper case, the rest lower case (`ann MARIE o'neil` -> `Ann Marie
/// O'neil`).
pub fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = c.is_whitespace() || c == '-';
    }
    out
}

/// The `n`-th (from 1) word, words split at any character of `separators` (Entra's `Word`);
/// empty when there are fewer.
pub fn word(text: &str, n: usize, separators: &str) -> String {
    text.split(|c| separators.contains(c))
        .filter(|w| !w.is_empty())
        .nth(n.saturating_sub(1))
        .unwrap_or_default()
        .to_owned()
}

/// Checks a `date` format once, when the manifest loads.
pub fn check_date_format(format: &str) -> Result<(), String> {
    format_date("2024-01-31T12:30:00Z", format).map(|_| ())
}

/// A region for `e164`, checked when the manifest loads.
pub fn phone_region(code: &str) -> Result<Region, String> {
    Region::from_str(&code.to_ascii_uppercase()).map_err(|_| {
        format!("`{code}` is not a region code for phone numbers (use an ISO 3166 code such as `US` or `GB`)")
    })
}

/// A phone number in E.164 (`+15555550100`), read as dialled in `region` unless it carries its
/// own country code. A number that is not valid is an error: sending it would be refused or,
/// worse, ring someone else.
pub fn e164(text: &str, region: Region) -> Result<String, String> {
    let text = text.trim();
    let text = text.strip_prefix("tel:").unwrap_or(text);
    let number = phonenumber::parse(Some(region), text).map_err(|e| format!("`{text}` is not a phone number: {e}"))?;
    if !phonenumber::is_valid(&number) {
        return Err(format!("`{text}` is not a valid phone number for {region:?}"));
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

/// `; did you mean `x`?` for a name close to a known one, else nothing.
pub fn did_you_mean(known: &[&str], name: &str) -> String {
    known
        .iter()
        .find(|k| strsim::jaro_winkler(k, name) > 0.8)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_and_mid_count_characters() {
        assert_eq!(left("Zoë Ng", 3), "Zoë");
        assert_eq!(left("ab", 5), "ab");
        assert_eq!(mid("Contoso", 2, 3), "ont");
        assert_eq!(mid("Contoso", 0, 2), "Co", "0 reads as the first character");
        assert_eq!(mid("ab", 5, 2), "");
    }

    #[test]
    fn strip_spaces_removes_all_whitespace() {
        assert_eq!(strip_spaces(" +1 555\t555 0100 "), "+15555550100");
    }

    #[test]
    fn normalize_diacritics_keeps_plain_letters() {
        assert_eq!(normalize_diacritics("Zoë Åström-Núñez"), "Zoe Astrom-Nunez");
        assert_eq!(normalize_diacritics("Straße Øster Ærø Łódź"), "Strasse Oster AEro Lodz");
        assert_eq!(normalize_diacritics("plain"), "plain");
    }

    #[test]
    fn switch_picks_a_case_or_the_default() {
        let cases = vec![("Sales".to_owned(), "S".to_owned()), ("Billing".to_owned(), "B".to_owned())];
        assert_eq!(switch("Billing", "Other", &cases), "B");
        assert_eq!(switch("billing", "Other", &cases), "Other", "exact match, as Entra's Switch");
    }

    #[test]
    fn dates_from_every_source_format() {
        for input in ["2024-01-31T12:30:00Z", "2024-01-31", "20240131123000.0Z", "133511778000000000"] {
            assert_eq!(format_date(input, "%Y-%m-%d").unwrap(), "2024-01-31", "{input}");
        }
        assert_eq!(format_date("2024-01-31T23:30:00-05:00", "%Y-%m-%d %H:%M").unwrap(), "2024-02-01 04:30");
        assert!(format_date("last tuesday", "%Y").unwrap_err().contains("is not a date"));
        assert!(check_date_format("%Y-%m-%d").is_ok());
        for bad in ["%~", "%"] {
            assert!(check_date_format(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phone_numbers_become_e164() {
        let us = phone_region("us").unwrap();
        assert_eq!(e164("(201) 555-0123", us).unwrap(), "+12015550123");
        assert_eq!(e164("tel:+44 20 7946 0958", us).unwrap(), "+442079460958", "its own country code wins");
        let gb = phone_region("GB").unwrap();
        assert_eq!(e164("020 7946 0958", gb).unwrap(), "+442079460958");
        let error = e164("12", us).unwrap_err();
        assert!(error.contains("`12` is not a"), "{error}");
        assert!(e164("call me", us).is_err());
        assert!(phone_region("XX").unwrap_err().contains("not a region code"));
    }
}
