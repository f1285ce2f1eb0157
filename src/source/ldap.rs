//! `kind: ldap`: Active Directory (or any LDAPv3 directory) over LDAP, LDAPS or StartTLS.
//!
//! Users come from one paged search (Simple Paged Results, streamed page by page, search
//! references skipped) asking for exactly the attributes the manifest reads. Group members come
//! from explicit `member;range=` windows, as AD returns at most 1,500 values at once; nested
//! groups are walked with cycle detection. Member DNs resolve to the users of the user search;
//! anything else is reported, never invented.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};
use tokio::sync::Mutex;

use super::ad;
use super::{AttrValue, SourceError, SourceGroup, SourceRecord};
use crate::manifest::model::{GroupSelector, LdapConfig, LdapScope};

/// AD never returns more than this many values of one attribute at once (MaxValRange).
const RANGE_WINDOW: usize = 1500;
const USER_FILTER: &str = "(&(objectClass=user)(!(objectClass=computer)))";

/// An LDAP directory, read with one connection per operation.
#[derive(Debug)]
pub struct LdapSource {
    name: String,
    config: LdapConfig,
    /// Attributes the mappings read; the search asks for these and nothing else.
    wanted: BTreeSet<String>,
    /// Lower-cased user DN -> record, from the last user search (to resolve group members).
    users_by_dn: Mutex<Option<Arc<HashMap<String, SourceRecord>>>>,
}

impl LdapSource {
    pub fn new(name: &str, config: LdapConfig, wanted: &BTreeSet<String>) -> Self {
        Self { name: name.to_owned(), config, wanted: wanted.clone(), users_by_dn: Mutex::new(None) }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.config.timeout_seconds.max(1)))
    }

    fn error(&self, what: impl Into<String>, hint: impl Into<String>, source: Option<LdapError>) -> SourceError {
        SourceError::Ldap {
            source_name: self.name.clone(),
            what: what.into(),
            hint: hint.into(),
            source: source.map(Box::new),
        }
    }

    /// Connects and binds.
    async fn connect(&self) -> Result<Ldap, SourceError> {
        let url = &self.config.url;
        let host = host_of(url);
        let encrypted = url.starts_with("ldaps://") || self.config.starttls;
        if !encrypted && !is_loopback(&host) && !self.config.allow_insecure {
            return Err(self.error(
                format!("refusing a simple bind over unencrypted `{url}`: the password would cross the network in clear text"),
                "use `ldaps://`, or `starttls: true`, or set `allow_insecure: true` if you accept the risk",
                None,
            ));
        }
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout())
            .set_starttls(self.config.starttls && url.starts_with("ldap://"));
        if let Some(ca_file) = &self.config.ca_file {
            settings = settings.set_config(Arc::new(crate::tls::rustls_config(ca_file).map_err(|detail| {
                self.error(
                    format!("cannot use `ca_file` `{}`: {detail}", ca_file.display()),
                    "give a PEM file of CA certificates",
                    None,
                )
            })?));
        }
        let (connection, mut ldap) = LdapConnAsync::with_settings(settings, url).await.map_err(|e| {
            let hint = if matches!(e, LdapError::Io { .. }) && encrypted {
                "check the host, the port and the TLS setup (`ca_file` for a private CA; the certificate must name the host)"
            } else {
                "check that the host and port are right and reachable"
            };
            self.error(format!("cannot connect to `{url}`"), hint, Some(e))
        })?;
        tokio::spawn(async move {
            // The connection driver ends when the handle is dropped; its errors surface on calls.
            let _ = connection.drive().await;
        });
        ldap.with_timeout(self.timeout())
            .simple_bind(&self.config.bind_dn, self.config.password.expose())
            .await
            .and_then(ldap3::LdapResult::success)
            .map_err(|e| {
                self.error(
                    format!("bind as `{}` to `{url}` failed", self.config.bind_dn),
                    "check `bind_dn` (a DN or a UPN such as svc@corp.example) and the password",
                    Some(e),
                )
            })?;
        Ok(ldap)
    }

    fn wanted_attributes(&self) -> Vec<String> {
        let mut attributes: BTreeSet<String> = self
            .wanted
            .iter()
            .filter(|a| !matches!(a.to_ascii_lowercase().as_str(), "id" | "disabled" | "dn"))
            .cloned()
            .collect();
        attributes.extend(["objectGUID".to_owned(), "userAccountControl".to_owned()]);
        attributes.into_iter().collect()
    }

    pub async fn users(&self) -> Result<Vec<SourceRecord>, SourceError> {
        let mut ldap = self.connect().await?;
        let filter = self.config.filter.clone().unwrap_or_else(|| USER_FILTER.to_owned());
        let scope = match self.config.scope {
            LdapScope::Base => Scope::Base,
            LdapScope::One => Scope::OneLevel,
            LdapScope::Sub => Scope::Subtree,
        };
        let attributes = self.wanted_attributes();
        let page_size = i32::try_from(self.config.page_size).unwrap_or(500);
        let base_dn = &self.config.base_dn;
        let search_error = |e: LdapError| self.search_error(base_dn, &filter, e);
        let mut stream = ldap
            .with_timeout(self.timeout())
            .streaming_search_with(
                vec![
                    Box::new(EntriesOnly::new()) as Box<dyn ldap3::adapters::Adapter<_, _>>,
                    Box::new(PagedResults::new(page_size)),
                ],
                base_dn,
                scope,
                &filter,
                attributes,
            )
            .await
            .map_err(search_error)?;
        let mut records = Vec::new();
        let mut by_dn = HashMap::new();
        while let Some(entry) = stream.next().await.map_err(search_error)? {
            let record = to_record(SearchEntry::construct(entry));
            by_dn.insert(record_dn(&record), record.clone());
            records.push(record);
        }
        stream.finish().await.success().map_err(search_error)?;
        let _ = ldap.unbind().await;
        *self.users_by_dn.lock().await = Some(Arc::new(by_dn));
        Ok(records)
    }

    fn search_error(&self, base_dn: &str, filter: &str, error: LdapError) -> SourceError {
        let (what, hint) = match &error {
            LdapError::FilterParsing => (
                format!("the filter `{filter}` is malformed"),
                "check the parentheses and escape `*`, `(`, `)` and `\\` in values as `\\2a`, `\\28`, `\\29`, `\\5c`",
            ),
            LdapError::LdapResult { result } if result.rc == 32 => {
                (format!("the base DN `{base_dn}` does not exist"), "check `base_dn` against the directory")
            }
            LdapError::LdapResult { result } if result.rc == 87 => {
                (format!("the server refused the filter `{filter}`"), "check the filter's syntax")
            }
            _ => (
                format!("the search under `{base_dn}` failed"),
                "check `base_dn`, `filter` and the bind account's rights",
            ),
        };
        self.error(what, hint, Some(error))
    }

    async fn user_index(&self) -> Result<Arc<HashMap<String, SourceRecord>>, SourceError> {
        if let Some(index) = self.users_by_dn.lock().await.clone() {
            return Ok(index);
        }
        self.users().await?;
        Ok(self.users_by_dn.lock().await.clone().unwrap_or_default())
    }

    pub async fn group(&self, selector: &GroupSelector, nested: bool) -> Result<SourceGroup, SourceError> {
        let users = self.user_index().await?;
        let mut ldap = self.connect().await?;
        let (dn, id, name) = self.find_group(&mut ldap, selector).await?;
        let mut members = Vec::new();
        let mut unresolved = BTreeSet::new();
        let mut seen_groups: BTreeSet<String> = BTreeSet::from([dn.to_ascii_lowercase()]);
        let mut pending = VecDeque::from([dn]);
        let mut member_set = BTreeSet::new();
        while let Some(group_dn) = pending.pop_front() {
            for member_dn in self.members(&mut ldap, &group_dn).await? {
                let key = member_dn.to_ascii_lowercase();
                if let Some(record) = users.get(&key) {
                    if member_set.insert(record.id.clone()) {
                        members.push(record.clone());
                    }
                } else if nested && self.is_group(&mut ldap, &member_dn).await? {
                    // A cycle (A contains B contains A) ends here.
                    if seen_groups.insert(key) {
                        pending.push_back(member_dn);
                    }
                } else {
                    unresolved.insert(member_dn);
                }
            }
        }
        let _ = ldap.unbind().await;
        // Members outside the user search are reported as unresolved, by DN.
        Ok(SourceGroup { id, name, members, unresolved: unresolved.into_iter().collect() })
    }

    async fn find_group(
        &self,
        ldap: &mut Ldap,
        selector: &GroupSelector,
    ) -> Result<(String, String, String), SourceError> {
        let (base, scope, filter) = match selector {
            GroupSelector::Dn(dn) => (dn.clone(), Scope::Base, "(objectClass=group)".to_owned()),
            GroupSelector::Id(guid) => (
                self.naming_context(ldap).await?,
                Scope::Subtree,
                format!("(&(objectClass=group)(objectGUID={}))", guid_filter_value(guid)),
            ),
            GroupSelector::Name(name) => {
                let value = ldap_escape(name.as_str());
                (
                    self.naming_context(ldap).await?,
                    Scope::Subtree,
                    format!("(&(objectClass=group)(|(sAMAccountName={value})(cn={value})))"),
                )
            }
        };
        let (entries, _) = ldap
            .with_timeout(self.timeout())
            .search(&base, scope, &filter, vec!["objectGUID", "cn"])
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(|e| self.search_error(&base, &filter, e))?;
        let entries: Vec<SearchEntry> =
            entries.into_iter().filter(|e| !e.is_ref()).map(SearchEntry::construct).collect();
        match entries.as_slice() {
            [entry] => {
                let id = entry
                    .bin_attrs
                    .get("objectGUID")
                    .and_then(|v| v.first())
                    .and_then(|b| ad::guid_to_string(b))
                    .unwrap_or_else(|| entry.dn.clone());
                let name = entry.attrs.get("cn").and_then(|v| v.first()).cloned().unwrap_or_else(|| entry.dn.clone());
                Ok((entry.dn.clone(), id, name))
            }
            [] => Err(SourceError::GroupNotFound { source_name: self.name.clone(), selector: selector.to_string() }),
            many => Err(self.error(
                format!("{} groups match {selector}", many.len()),
                "name the group by `dn` instead",
                None,
            )),
        }
    }

    /// The domain's naming context (rootDSE `defaultNamingContext`), where groups are searched.
    async fn naming_context(&self, ldap: &mut Ldap) -> Result<String, SourceError> {
        let (entries, _) = ldap
            .with_timeout(self.timeout())
            .search("", Scope::Base, "(objectClass=*)", vec!["defaultNamingContext"])
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(|e| self.search_error("", "(objectClass=*)", e))?;
        Ok(entries
            .into_iter()
            .map(SearchEntry::construct)
            .find_map(|e| e.attrs.get("defaultNamingContext").and_then(|v| v.first()).cloned())
            .unwrap_or_else(|| self.config.base_dn.clone()))
    }

    /// Every `member` of a group, window by window (`member;range=0-1499`, `1500-2999`, ...).
    async fn members(&self, ldap: &mut Ldap, group_dn: &str) -> Result<Vec<String>, SourceError> {
        let mut all = Vec::new();
        let mut start = 0;
        loop {
            let wanted = format!("member;range={start}-{}", start + RANGE_WINDOW - 1);
            let (entries, _) = ldap
                .with_timeout(self.timeout())
                .search(group_dn, Scope::Base, "(objectClass=*)", vec![wanted.as_str()])
                .await
                .and_then(ldap3::SearchResult::success)
                .map_err(|e| self.search_error(group_dn, "(objectClass=*)", e))?;
            let Some(entry) = entries.into_iter().find(|e| !e.is_ref()).map(SearchEntry::construct) else {
                return Ok(all);
            };
            let mut next = None;
            for (attribute, values) in entry.attrs {
                match ad::parse_range(&attribute) {
                    Some((_, Some(high))) if attribute.to_ascii_lowercase().starts_with("member;") => {
                        all.extend(values);
                        next = Some(high + 1);
                    }
                    Some((_, None)) if attribute.to_ascii_lowercase().starts_with("member;") => all.extend(values),
                    // A server that ignores ranges answers with the whole attribute.
                    None if attribute.eq_ignore_ascii_case("member") => all.extend(values),
                    _ => {}
                }
            }
            match next {
                Some(n) => start = n,
                None => return Ok(all),
            }
        }
    }

    async fn is_group(&self, ldap: &mut Ldap, dn: &str) -> Result<bool, SourceError> {
        let result =
            ldap.with_timeout(self.timeout()).search(dn, Scope::Base, "(objectClass=group)", vec!["1.1"]).await;
        match result.and_then(ldap3::SearchResult::success) {
            Ok((entries, _)) => Ok(entries.iter().any(|e| !e.is_ref())),
            // A member DN that no longer exists is not a group; it is reported as unresolved.
            Err(LdapError::LdapResult { result }) if result.rc == 32 => Ok(false),
            Err(e) => Err(self.search_error(dn, "(objectClass=group)", e)),
        }
    }
}

fn record_dn(record: &SourceRecord) -> String {
    match record.get("dn") {
        Some(AttrValue::Text(dn)) => dn.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// One search entry as a record: values kept as lists when multi-valued, AD's binary and time
/// formats rendered as text, `dn` always present.
pub fn to_record(entry: SearchEntry) -> SourceRecord {
    let guid = entry
        .bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("objectGUID"))
        .and_then(|(_, v)| v.first())
        .and_then(|b| ad::guid_to_string(b));
    let mut record = SourceRecord::new(guid.unwrap_or_else(|| entry.dn.clone()));
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

fn one_or_many(mut values: Vec<String>) -> AttrValue {
    if values.len() == 1 { AttrValue::Text(values.remove(0)) } else { AttrValue::List(values) }
}

/// A GUID in text form as an `objectGUID` filter value: each byte escaped, in AD's byte order.
fn guid_filter_value(guid: &str) -> String {
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

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default().to_owned();
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_owned()
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

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
