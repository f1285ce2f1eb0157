//! `kind: graph`: Microsoft Entra ID through Microsoft Graph.
//!
//! OAuth2 client credentials against a configurable authority; users from `/users` with `$select`
//! of exactly the attributes the manifest reads, 999 a page, following `@odata.nextLink` to the
//! end; group members from `/groups/{id}/members` or, nested, `/transitiveMembers`, users only.
//! 429 waits for `Retry-After`, 5xx and timeouts back off and retry, a 401 refreshes the token
//! once.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use serde_json::Value;

use super::{AttrValue, SourceError, SourceGroup, SourceRecord};
use crate::manifest::model::{ClientAuth, GraphConfig, GroupSelector};
use crate::target::auth::{Auth, OAuth2};
use crate::target::pacing::throttled_wait;
use crate::target::retry::{Backoff, Verdict, verdict};

const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const MAX_ATTEMPTS: u32 = 5;
/// Guards against a `@odata.nextLink` chain that never ends.
const MAX_PAGES: usize = 100_000;

#[derive(Debug)]
pub struct GraphSource {
    name: String,
    graph_url: String,
    filter: Option<String>,
    /// `$select`: `id`, `accountEnabled` and the attributes the manifest reads.
    select: String,
    /// The manifest reads `manager`, a navigation property: `$expand=manager($select=id)`.
    expand_manager: bool,
    http: reqwest::Client,
    auth: Auth,
    backoff: Backoff,
}

impl GraphSource {
    pub fn new(name: &str, config: &GraphConfig, wanted: &BTreeSet<String>) -> Result<Self, SourceError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("scimform/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &config.ca_file {
            builder = builder.tls_certs_merge(crate::tls::reqwest_certificates(ca_file).map_err(|detail| {
                SourceError::Graph {
                    source_name: name.to_owned(),
                    what: format!("cannot use `ca_file` `{}`: {detail}", ca_file.display()),
                    hint: "give a PEM file of CA certificates".into(),
                }
            })?);
        }
        let http = builder.build().map_err(|e| SourceError::Graph {
            source_name: name.to_owned(),
            what: format!("cannot set up HTTP: {e}"),
            hint: "check `ca_file`".into(),
        })?;
        let token_url = config
            .authority
            .clone()
            .unwrap_or_else(|| format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", config.tenant_id));
        let auth = Auth::OAuth2(OAuth2::new(
            http.clone(),
            token_url,
            config.client_id.clone(),
            config.client_secret.clone(),
            Some(GRAPH_SCOPE.to_owned()),
            ClientAuth::Form,
        ));
        let expand_manager = wanted.iter().any(|a| a.eq_ignore_ascii_case("manager"));
        let mut select: BTreeSet<&str> = wanted
            .iter()
            .map(String::as_str)
            .filter(|a| !matches!(a.to_ascii_lowercase().as_str(), "id" | "disabled" | "accountenabled" | "manager"))
            .collect();
        select.extend(["id", "accountEnabled"]);
        Ok(Self {
            name: name.to_owned(),
            graph_url: config
                .graph_url
                .clone()
                .unwrap_or_else(|| DEFAULT_GRAPH_URL.to_owned())
                .trim_end_matches('/')
                .to_owned(),
            filter: config.filter.clone(),
            select: select.into_iter().collect::<Vec<_>>().join(","),
            expand_manager,
            http,
            auth,
            backoff: Backoff::default(),
        })
    }

    /// Shorter waits between retries (tests).
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    fn error(&self, what: impl Into<String>, hint: impl Into<String>) -> SourceError {
        SourceError::Graph { source_name: self.name.clone(), what: what.into(), hint: hint.into() }
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}{path}", self.graph_url);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode(v));
        }
        url
    }

    /// One GET with Graph's retry rules.
    async fn get(&self, url: &str) -> Result<Value, SourceError> {
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let authorization = self.auth.header().await.map_err(|e| {
                self.error(e.to_string(), "check `tenant_id`, `client_id`, `client_secret` and `authority`")
            })?;
            let sent = self
                .http
                .get(url)
                .header(AUTHORIZATION, authorization.clone())
                .header("ConsistencyLevel", "eventual")
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) if attempt < MAX_ATTEMPTS && (e.is_timeout() || e.is_connect() || e.is_request()) => {
                    tracing::warn!("Graph GET {}: {e}; retrying", path_of(url));
                    tokio::time::sleep(self.backoff.delay(attempt, fastrand::f64())).await;
                    continue;
                }
                Err(e) => {
                    return Err(self.error(
                        format!("cannot reach Microsoft Graph for GET {}: {e}", path_of(url)),
                        "check `graph_url` and the network",
                    ));
                }
            };
            let status = response.status().as_u16();
            tracing::info!("Graph GET {} -> {status}", path_of(url));
            match verdict(status) {
                Verdict::Success => {
                    return response.json().await.map_err(|e| {
                        self.error(
                            format!("GET {} answered something that is not JSON: {e}", path_of(url)),
                            "check `graph_url`",
                        )
                    });
                }
                Verdict::Unauthorized if !refreshed => {
                    self.auth.reject(&authorization).await;
                    refreshed = true;
                }
                Verdict::Throttled if attempt < MAX_ATTEMPTS => {
                    let wait = throttled_wait(response.headers(), &self.backoff, attempt);
                    tracing::warn!("Graph throttled GET {} (429); waiting {wait:?}", path_of(url));
                    tokio::time::sleep(wait).await;
                }
                Verdict::Transient | Verdict::Final if status >= 500 && attempt < MAX_ATTEMPTS => {
                    tokio::time::sleep(self.backoff.delay(attempt, fastrand::f64())).await;
                }
                _ => {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    let code = body.pointer("/error/code").and_then(Value::as_str).unwrap_or("");
                    let message = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
                    let hint = match status {
                        401 | 403 => {
                            "check the app registration's Graph permissions (User.Read.All, GroupMember.Read.All) and admin consent"
                        }
                        404 => "check the group id or name",
                        _ => "check the request in the Graph documentation",
                    };
                    return Err(self.error(
                        format!("GET {} was refused with HTTP {status} {code}: {message}", path_of(url)),
                        hint,
                    ));
                }
            }
        }
    }

    /// Every item of a collection, following `@odata.nextLink` as an opaque URL until it ends.
    async fn collect(&self, first: String) -> Result<Vec<Value>, SourceError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(self.error("the pages never end", "report this to the service"));
            }
            let mut page = self.get(&url).await?;
            if let Some(Value::Array(values)) = page.get_mut("value").map(Value::take) {
                items.extend(values);
            }
            next = page.get("@odata.nextLink").and_then(Value::as_str).map(str::to_owned);
        }
        Ok(items)
    }

    pub async fn users(&self) -> Result<Vec<SourceRecord>, SourceError> {
        let mut query = vec![("$select", self.select.as_str()), ("$top", "999")];
        if let Some(filter) = &self.filter {
            query.push(("$filter", filter));
        }
        if self.expand_manager {
            query.push(("$expand", "manager($select=id)"));
        }
        let items = self.collect(self.url("/users", &query)).await?;
        Ok(items.iter().filter_map(to_record).collect())
    }

    pub async fn group(&self, selector: &GroupSelector, nested: bool) -> Result<SourceGroup, SourceError> {
        let (id, name) = match selector {
            GroupSelector::Id(id) => {
                let group =
                    self.get(&self.url(&format!("/groups/{}", encode(id)), &[("$select", "id,displayName")])).await?;
                (id.clone(), group.get("displayName").and_then(Value::as_str).unwrap_or(id).to_owned())
            }
            GroupSelector::Name(name) => {
                let filter = format!("displayName eq '{}'", name.replace('\'', "''"));
                let found =
                    self.collect(self.url("/groups", &[("$filter", &filter), ("$select", "id,displayName")])).await?;
                match found.as_slice() {
                    [group] => (group.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(), name.clone()),
                    [] => {
                        return Err(SourceError::GroupNotFound {
                            source_name: self.name.clone(),
                            selector: selector.to_string(),
                        });
                    }
                    many => {
                        return Err(self.error(
                            format!("{} groups are named `{name}`", many.len()),
                            "name the group by `id` instead",
                        ));
                    }
                }
            }
            GroupSelector::Dn(_) => {
                return Err(self.error("Graph groups have no DN", "name the group by `id` or `name`"));
            }
        };
        let relation = if nested { "transitiveMembers" } else { "members" };
        let path = format!("/groups/{}/{relation}/microsoft.graph.user", encode(&id));
        let items = self.collect(self.url(&path, &[("$select", &self.select), ("$top", "999")])).await?;
        Ok(SourceGroup { id, name, members: items.iter().filter_map(to_record).collect(), unresolved: Vec::new() })
    }
}

/// A Graph user object as a record: strings, booleans and lists of strings are kept;
/// `accountEnabled: false` marks a disabled account.
pub fn to_record(user: &Value) -> Option<SourceRecord> {
    let object = user.as_object()?;
    let mut record = SourceRecord::new(object.get("id")?.as_str()?);
    for (name, value) in object {
        if name.starts_with("@odata") {
            continue;
        }
        let attr = match value {
            Value::String(s) => AttrValue::Text(s.clone()),
            Value::Bool(b) => AttrValue::Bool(*b),
            Value::Number(n) => AttrValue::Text(n.to_string()),
            Value::Array(items) => {
                AttrValue::List(items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
            }
            // An expanded navigation property (`manager`) reads as the id of what it points to.
            Value::Object(expanded) => match expanded.get("id").and_then(Value::as_str) {
                Some(id) => AttrValue::Text(id.to_owned()),
                None => continue,
            },
            Value::Null => continue,
        };
        record.insert(name, attr);
    }
    record.disabled = object.get("accountEnabled").and_then(Value::as_bool) == Some(false);
    Some(record)
}

/// Percent-encodes a query or path value (RFC 3986 unreserved characters pass).
fn encode(value: &str) -> String {
    value.bytes().fold(String::with_capacity(value.len()), |mut out, b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b',' | b'$') {
            out.push(char::from(b));
        } else {
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{b:02X}"));
        }
        out
    })
}

fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    after_scheme.find('/').map_or("/", |i| after_scheme[i..].split('?').next().unwrap_or("/"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn users_become_records() {
        let record = to_record(&json!({"id": "1", "mail": "a@x", "accountEnabled": false, "proxyAddresses": ["a", "b"], "@odata.type": "#microsoft.graph.user"})).unwrap();
        assert!(record.disabled);
        assert_eq!(record.get("mail"), Some(&AttrValue::Text("a@x".into())));
        assert_eq!(record.get("@odata.type"), None);
        assert!(matches!(record.get("proxyAddresses"), Some(AttrValue::List(v)) if v.len() == 2));
    }

    #[test]
    fn encoding_and_paths() {
        assert_eq!(encode("displayName eq 'A&B'"), "displayName%20eq%20%27A%26B%27");
        assert_eq!(path_of("https://graph.example/v1.0/users?$top=1"), "/v1.0/users");
    }
}
