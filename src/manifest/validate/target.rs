//! `target`: the SCIM service, its auth, limits and Genesys's region.

use super::{Checker, Profile, RawAuth, RawTarget, ReadLimits, Secret, Segment, TargetAuth, TargetConfig, key};

impl Checker<'_> {
    pub(super) fn target(&mut self) -> Option<TargetConfig> {
        let path = [key("target")];
        let raw: RawTarget = self.deserialize(&path)?;
        let at = |k: &[&str]| -> Vec<Segment> { path.iter().cloned().chain(k.iter().map(|k| key(k))).collect() };
        let region = raw.region.clone();
        if region.is_some() && raw.profile != Profile::Genesys {
            self.report_at(&at(&["region"]), "`region` applies to `profile: genesys` only", None);
        }
        // Genesys derives both URLs from the region; either may still be given (tests, proxies).
        let genesys_region = region.as_deref().filter(|_| raw.profile == Profile::Genesys);
        let base_url = match (&raw.base_url, genesys_region) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(region)) => Some(format!("https://api.{region}/api/v2/scim/v2")),
            (None, None) => {
                self.report(
                    self.node(&path).location,
                    &path,
                    "missing key `base_url`",
                    Some("give the SCIM base URL, or `profile: genesys` with `region`".into()),
                );
                None
            }
        };
        if let Some(url) = &base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            self.report_at(&at(&["base_url"]), "`base_url` must be an http:// or https:// URL", None);
        }
        let auth = match &raw.auth {
            RawAuth::BearerToken(token) => Some(TargetAuth::BearerToken(Secret::new(token.clone()))),
            RawAuth::Oauth2ClientCredentials(o) => {
                let token_url = match (&o.token_url, genesys_region) {
                    (Some(url), _) => Some(url.clone()),
                    (None, Some(region)) => Some(format!("https://login.{region}/oauth/token")),
                    (None, None) => {
                        let p = at(&["auth", "oauth2_client_credentials"]);
                        self.report_at(
                            &p,
                            "missing key `token_url`",
                            Some("give the OAuth2 token endpoint, or `profile: genesys` with `region`".into()),
                        );
                        None
                    }
                };
                token_url.map(|token_url| TargetAuth::OAuth2ClientCredentials {
                    token_url,
                    client_id: o.client_id.clone(),
                    client_secret: Secret::new(o.client_secret.clone()),
                    scope: o.scope.clone(),
                    client_auth: o.client_auth,
                })
            }
        };
        let concurrency = raw.concurrency.unwrap_or(4);
        self.check_range(&at(&["concurrency"]), concurrency, 1..=64, "");
        let max_attempts = raw.max_attempts.unwrap_or(5);
        self.check_range(&at(&["max_attempts"]), max_attempts, 1..=20, "");
        let timeout_seconds = raw.timeout_seconds.unwrap_or(30);
        self.check_range(&at(&["timeout_seconds"]), timeout_seconds, 1..=3600, ", the seconds one request may take");
        let max_response_mib = raw.max_response_mib.unwrap_or(32);
        self.check_range(&at(&["max_response_mib"]), max_response_mib, 1..=1024, "");
        let max_resources = raw.max_resources.unwrap_or(1_000_000);
        self.check_range(&at(&["max_resources"]), max_resources, 1..=100_000_000, "");
        if let Some(rate) = &raw.rate_limit
            && rate.requests_per_minute == 0
        {
            let p = at(&["rate_limit", "requests_per_minute"]);
            self.report_at(&p, "requests_per_minute must be at least 1", None);
        }
        Some(TargetConfig {
            profile: raw.profile,
            base_url: base_url?.trim_end_matches('/').to_owned(),
            auth: auth?,
            concurrency: usize::try_from(concurrency).unwrap_or(4),
            requests_per_minute: raw.rate_limit.map(|r| r.requests_per_minute).filter(|r| *r > 0),
            ca_file: raw.ca_file.as_ref().map(|p| self.relative_path(p)),
            timeout_seconds,
            max_attempts: max_attempts.clamp(1, 20),
            limits: ReadLimits {
                max_response_bytes: usize::try_from(max_response_mib).unwrap_or(32) * 1024 * 1024,
                max_resources: usize::try_from(max_resources).unwrap_or(1_000_000),
            },
        })
    }
}
