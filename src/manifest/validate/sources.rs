//! `sources`: each named source, its kind's own fields, and references to sources by name.

use super::{
    Checker, FileConfig, GraphConfig, GraphCredential, LdapConfig, LdapScope, NodeKind, RawFileSource, RawGraphSource,
    RawLdapSource, SOURCE_KINDS, Secret, Segment, SourceConfig, backticked, did_you_mean, key,
};

impl Checker<'_> {
    pub(super) fn sources(&mut self) -> std::collections::BTreeMap<String, SourceConfig> {
        let mut sources = std::collections::BTreeMap::new();
        let Some(node) = self.root.get("sources") else { return sources };
        if !matches!(node.kind, NodeKind::Map(_)) {
            self.report(node.location, &[key("sources")], "`sources` must be a mapping of names to sources", None);
            return sources;
        }
        let names: Vec<String> = node.entries().iter().map(|(k, _)| k.text.clone()).collect();
        for name in names {
            let path = [key("sources"), key(&name)];
            if let Some(config) = self.source(&path) {
                sources.insert(name, config);
            }
        }
        sources
    }

    pub(super) fn source(&mut self, path: &[Segment]) -> Option<SourceConfig> {
        let node = self.node(path);
        let location = node.location;
        let Some(kind_node) = node.get("kind") else {
            self.report(location, path, "missing key `kind`", Some(format!("one of {}", backticked(SOURCE_KINDS))));
            return None;
        };
        let kind = kind_node.as_scalar().unwrap_or_default().to_owned();
        let kind_location = kind_node.location;
        // Deserialize the variant's own struct so errors keep their exact key path.
        let mut fields = node.clone();
        if let NodeKind::Map(entries) = &mut fields.kind {
            entries.retain(|(k, _)| k.text != "kind");
        }
        let json = fields.to_json();
        let mut kind_path = path.to_vec();
        kind_path.push(key("kind"));
        match kind.as_str() {
            "file" => {
                let raw: RawFileSource = self.deserialize_value(path, json)?;
                Some(SourceConfig::File(FileConfig { path: self.relative_path(&raw.path) }))
            }
            "ldap" => {
                let raw: RawLdapSource = self.deserialize_value(path, json)?;
                Some(SourceConfig::Ldap(self.ldap(path, raw)))
            }
            "graph" => {
                let raw: RawGraphSource = self.deserialize_value(path, json)?;
                Some(SourceConfig::Graph(self.graph(path, raw)?))
            }
            other => {
                let hint = did_you_mean(other, SOURCE_KINDS.iter().copied())
                    .or_else(|| Some(format!("one of {}", backticked(SOURCE_KINDS))));
                self.report(kind_location, &kind_path, format!("unknown source kind `{other}`"), hint);
                None
            }
        }
    }

    pub(super) fn ldap(&mut self, path: &[Segment], raw: RawLdapSource) -> LdapConfig {
        let at = |k: &str| [path, &[key(k)]].concat();
        let page_size = raw.page_size.unwrap_or(500);
        self.check_range(&at("page_size"), page_size, 1..=1000, " (AD's MaxPageSize is 1000)");
        let timeout_seconds = raw.timeout_seconds.unwrap_or(30);
        self.check_range(&at("timeout_seconds"), timeout_seconds, 1..=3600, ", the seconds one operation may take");
        if !(raw.url.starts_with("ldap://") || raw.url.starts_with("ldaps://")) {
            self.report_at(&at("url"), "an LDAP url must start with `ldap://` or `ldaps://`", None);
        }
        LdapConfig {
            url: raw.url,
            bind_dn: raw.bind_dn,
            password: Secret::new(raw.password),
            base_dn: raw.base_dn,
            filter: raw.filter,
            scope: raw.scope.unwrap_or(LdapScope::Sub),
            page_size,
            starttls: raw.starttls.unwrap_or(false),
            ca_file: raw.ca_file.map(|p| self.relative_path(&p)),
            allow_insecure: raw.allow_insecure.unwrap_or(false),
            timeout_seconds,
        }
    }

    pub(super) fn graph(&mut self, path: &[Segment], raw: RawGraphSource) -> Option<GraphConfig> {
        let credential = match (raw.client_secret, raw.client_certificate, raw.federated_token_file) {
            (Some(secret), None, None) => GraphCredential::ClientSecret(Secret::new(secret)),
            (None, Some(certificate), None) => GraphCredential::Certificate {
                cert_file: self.relative_path(&certificate.cert_file),
                key_file: self.relative_path(&certificate.key_file),
            },
            (None, None, Some(token_file)) => {
                GraphCredential::FederatedToken { token_file: self.relative_path(&token_file) }
            }
            (secret, certificate, token_file) => {
                let given =
                    [secret.is_some(), certificate.is_some(), token_file.is_some()].iter().filter(|g| **g).count();
                let what = if given == 0 {
                    "a graph source needs a credential"
                } else {
                    "a graph source takes one credential"
                };
                self.report_at(
                    path,
                    what,
                    Some("give exactly one of `client_secret`, `client_certificate: { cert_file, key_file }` and `federated_token_file`".into()),
                );
                return None;
            }
        };
        Some(GraphConfig {
            tenant_id: raw.tenant_id,
            client_id: raw.client_id,
            credential,
            authority: raw.authority,
            graph_url: raw.graph_url,
            filter: raw.filter,
            ca_file: raw.ca_file.map(|p| self.relative_path(&p)),
        })
    }

    pub(super) fn source_reference(&mut self, path: &[Segment], name: &str) {
        let declared = self.root.get("sources").is_some_and(|n| n.entries().iter().any(|(k, _)| k.text == name));
        if !declared {
            let candidates: Vec<String> = self
                .root
                .get("sources")
                .map(|n| n.entries().iter().map(|(k, _)| k.text.clone()).collect())
                .unwrap_or_default();
            let hint = did_you_mean(name, candidates.iter().map(String::as_str))
                .or_else(|| (!candidates.is_empty()).then(|| format!("declared sources: {}", backticked(&candidates))));
            self.report_at(path, format!("source `{name}` is not declared under `sources`"), hint);
        }
    }
}
