//! Directory entries as records: attribute values (text and binary), the DN, objectGUID in
//! canonical form, and GUIDs and hosts as filters and URLs need them. Pure.

use std::collections::HashMap;

use ldap3::{SearchEntry, ldap_escape};

use crate::record::{AttrValue, SourceRecord, ad};

/// A text attribute's first value.
pub(super) fn text_value(entry: &SearchEntry, name: &str) -> Option<String> {
    entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.first()).cloned()
}

/// A binary attribute's first value, wherever ldap3 put it (values that happen to be valid
/// UTF-8 land among the text attributes).
pub(super) fn binary_value(entry: &SearchEntry, name: &str) -> Option<Vec<u8>> {
    let find = |map: &HashMap<String, Vec<Vec<u8>>>| {
        map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.first().cloned())
    };
    find(&entry.bin_attrs).or_else(|| {
        entry
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(|t| t.as_bytes().to_vec())
    })
}

pub(super) fn record_dn(record: &SourceRecord) -> String {
    match record.get("dn") {
        Some(AttrValue::Text(dn)) => dn.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// One search entry as a record: values kept as lists when multi-valued, AD's binary and time
/// formats rendered as text, `dn` always present.
pub fn to_record(entry: SearchEntry) -> SourceRecord {
    let guid = binary_value(&entry, "objectGUID").and_then(|b| ad::guid_to_string(&b));
    let mut record = SourceRecord::new(guid.clone().unwrap_or_else(|| entry.dn.clone()));
    record.insert("dn", AttrValue::Text(entry.dn.clone()));
    for (name, bytes) in &entry.bin_attrs {
        let text: Vec<String> = match name.to_ascii_lowercase().as_str() {
            "objectguid" => bytes.iter().filter_map(|b| ad::guid_to_string(b)).collect(),
            "objectsid" => bytes.iter().filter_map(|b| ad::sid_to_string(b)).collect(),
            _ => continue,
        };
        record.insert(name, one_or_many(text));
    }
    for (name, values) in entry.attrs {
        if name.eq_ignore_ascii_case("objectGUID") || name.eq_ignore_ascii_case("objectSid") {
            // Binary values that happen to be valid UTF-8; the GUID is the record's id.
            if let Some(guid) = guid.as_ref().filter(|_| name.eq_ignore_ascii_case("objectGUID")) {
                record.insert(&name, AttrValue::Text(guid.clone()));
            }
            continue;
        }
        let converted: Vec<String> = if ad::GENERALIZED_TIME_ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(&name)) {
            values.iter().map(|v| ad::generalized_time_to_rfc3339(v).unwrap_or_else(|| v.clone())).collect()
        } else if ad::FILETIME_ATTRIBUTES.iter().any(|a| a.eq_ignore_ascii_case(&name)) {
            values.iter().filter_map(|v| ad::filetime_to_rfc3339(v)).collect()
        } else {
            values
        };
        if name.eq_ignore_ascii_case("userAccountControl") {
            record.disabled = converted.first().is_some_and(|v| ad::is_disabled(v));
        }
        if !converted.is_empty() {
            record.insert(&name, one_or_many(converted));
        }
    }
    record
}

pub(super) fn one_or_many(mut values: Vec<String>) -> AttrValue {
    if values.len() == 1 { AttrValue::Text(values.remove(0)) } else { AttrValue::List(values) }
}

/// A GUID in text form as an `objectGUID` filter value: each byte escaped, in AD's byte order.
pub(super) fn guid_filter_value(guid: &str) -> String {
    let hex: String = guid.chars().filter(char::is_ascii_hexdigit).collect();
    if hex.len() != 32 {
        return ldap_escape(guid).into_owned();
    }
    let byte = |i: usize| &hex[i * 2..i * 2 + 2];
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    order.iter().fold(String::with_capacity(48), |mut out, &i| {
        out.push('\\');
        out.push_str(byte(i));
        out
    })
}

pub(super) fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default().to_owned();
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::is_loopback;

    #[test]
    fn hosts_and_loopback() {
        assert_eq!(host_of("ldap://127.0.0.1:389"), "127.0.0.1");
        assert_eq!(host_of("ldaps://dc01.corp.example"), "dc01.corp.example");
        assert_eq!(host_of("ldap://[::1]:389/"), "::1");
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("localhost") && is_loopback("127.8.0.1"));
        assert!(!is_loopback("10.0.0.1") && !is_loopback("dc01.corp.example"));
    }

    #[test]
    fn guid_filter_bytes_are_in_ad_order() {
        assert_eq!(
            guid_filter_value("5b8ed4ea-7d36-4cdf-9e12-c47576bb3893"),
            r"\ea\d4\8e\5b\36\7d\df\4c\9e\12\c4\75\76\bb\38\93"
        );
    }

    #[test]
    fn entries_become_records() {
        let entry = SearchEntry {
            dn: "CN=Ann,OU=Staff,DC=corp,DC=test".into(),
            attrs: HashMap::from([
                ("mail".into(), vec!["ann@corp.test".into()]),
                ("proxyAddresses".into(), vec!["smtp:a@x".into(), "SMTP:ann@corp.test".into()]),
                ("userAccountControl".into(), vec!["514".into()]),
                ("whenCreated".into(), vec!["20240131235959.0Z".into()]),
            ]),
            bin_attrs: HashMap::from([(
                "objectGUID".into(),
                vec![vec![
                    0xea, 0xd4, 0x8e, 0x5b, 0x36, 0x7d, 0xdf, 0x4c, 0x9e, 0x12, 0xc4, 0x75, 0x76, 0xbb, 0x38, 0x93,
                ]],
            )]),
        };
        let record = to_record(entry);
        assert_eq!(record.id, "5b8ed4ea-7d36-4cdf-9e12-c47576bb3893");
        assert!(record.disabled);
        assert_eq!(record.get("OBJECTGUID"), Some(&AttrValue::Text(record.id.clone())));
        assert_eq!(record.get("whenCreated"), Some(&AttrValue::Text("2024-01-31T23:59:59Z".into())));
        assert!(matches!(record.get("proxyAddresses"), Some(AttrValue::List(v)) if v.len() == 2));
        assert_eq!(record.get("dn"), Some(&AttrValue::Text("CN=Ann,OU=Staff,DC=corp,DC=test".into())));
    }
}
