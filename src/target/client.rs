//! `ScimClient`: a generic RFC 7644 client over reqwest. It lists users page by page, reads the
//! paired groups, and sends prepared `ScimRequest`s. Every 2xx is success (PATCH may answer 204).

use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, ETAG, HeaderValue, IF_MATCH};
use serde_json::Value;

use super::{CurrentGroup, CurrentState, CurrentUser, TargetError, TargetReader, TargetWriter};
use crate::manifest::model::{TargetAuth, TargetConfig, TargetGroupRef};
use crate::scim::resource::{ListResponse, ScimErrorBody};
use crate::scim::{EqFilter, Method, ScimRequest, ScimResponse};
use crate::secret::Secret;

const SCIM_JSON: &str = "application/scim+json";
/// Page size for listing; servers may answer with fewer per page.
const PAGE_SIZE: usize = 100;
/// Guards against a server whose `totalResults` never ends.
const MAX_PAGES: usize = 100_000;

#[derive(Debug, Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    base_url: String,
    token: Secret,
}

impl ScimClient {
    pub fn new(config: &TargetConfig) -> Result<Self, TargetError> {
        let token = match &config.auth {
            TargetAuth::BearerToken(token) => token.clone(),
            TargetAuth::OAuth2ClientCredentials { .. } => {
                return Err(TargetError::Unsupported(
                    "`oauth2_client_credentials` is not supported by this version of scimform; use `bearer_token`"
                        .into(),
                ));
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("scimform/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| TargetError::Transport { request: "client setup".into(), source })?;
        Ok(Self { http, base_url: config.base_url.clone(), token })
    }

    async fn execute(&self, request: &ScimRequest, query: &[(&str, String)]) -> Result<ScimResponse, TargetError> {
        let url = format!("{}{}", self.base_url, request.path);
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.expose())).map_err(|_| {
            TargetError::Unsupported("the bearer token holds characters that cannot be sent in a header".into())
        })?;
        auth.set_sensitive(true);
        let mut builder = self.http.request(method, &url).header(AUTHORIZATION, auth).header(ACCEPT, SCIM_JSON);
        if !query.is_empty() {
            builder = builder.query(query);
        }
        if let Some(version) = &request.if_match {
            builder = builder.header(IF_MATCH, version);
        }
        if let Some(body) = &request.body {
            builder = builder.header(CONTENT_TYPE, SCIM_JSON).body(body.to_string());
        }
        let label = request.to_string();
        let response =
            builder.send().await.map_err(|source| TargetError::Transport { request: label.clone(), source })?;
        let status = response.status().as_u16();
        let etag = response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes =
            response.bytes().await.map_err(|source| TargetError::Transport { request: label.clone(), source })?;
        if !(200..300).contains(&status) {
            let body = serde_json::from_slice::<ScimErrorBody>(&bytes).ok().map(Box::new);
            return Err(TargetError::Status { request: label, status, body });
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(
                serde_json::from_slice::<Value>(&bytes)
                    .map_err(|e| TargetError::Protocol { request: label, detail: e.to_string() })?,
            )
        };
        Ok(ScimResponse { status, body, etag })
    }

    async fn list(&self, path: &str, filter: Option<&EqFilter>) -> Result<Vec<Value>, TargetError> {
        let mut resources = Vec::new();
        let mut start_index = 1;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("startIndex", start_index.to_string()), ("count", PAGE_SIZE.to_string())];
            if let Some(filter) = filter {
                query.push(("filter", filter.to_string()));
            }
            let request = ScimRequest::new(Method::Get, path);
            let response = self.execute(&request, &query).await?;
            let page: ListResponse<Value> = response
                .body
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| TargetError::Protocol { request: request.to_string(), detail: e.to_string() })?
                .ok_or_else(|| TargetError::Protocol {
                    request: request.to_string(),
                    detail: "empty list response".into(),
                })?;
            let received = page.resources.len();
            resources.extend(page.resources);
            start_index += received;
            if received == 0 || resources.len() >= page.total_results {
                break;
            }
        }
        Ok(resources)
    }

    async fn group(&self, reference: &TargetGroupRef) -> Result<CurrentGroup, TargetError> {
        let resource = match reference {
            TargetGroupRef::Id(id) => {
                let request = ScimRequest::new(Method::Get, format!("/Groups/{id}"));
                match self.execute(&request, &[]).await {
                    Ok(response) => response.body,
                    Err(TargetError::Status { status: 404, .. }) => None,
                    Err(e) => return Err(e),
                }
            }
            TargetGroupRef::DisplayName(name) => {
                let mut found = self.list("/Groups", Some(&EqFilter::new("displayName", name.as_str()))).await?;
                if found.len() > 1 {
                    return Err(TargetError::GroupAmbiguous { group: reference.clone(), count: found.len() });
                }
                found.pop()
            }
        };
        resource
            .as_ref()
            .and_then(CurrentGroup::from_resource)
            .ok_or_else(|| TargetError::GroupNotFound { group: reference.clone() })
    }
}

impl TargetReader for ScimClient {
    async fn current_state(&self, groups: &[TargetGroupRef]) -> Result<CurrentState, TargetError> {
        let users = self.list("/Users", None).await?.into_iter().filter_map(CurrentUser::from_resource).collect();
        let mut state = CurrentState { users, groups: std::collections::BTreeMap::new() };
        for reference in groups {
            if !state.groups.contains_key(reference) {
                let group = self.group(reference).await?;
                state.groups.insert(reference.clone(), group);
            }
        }
        Ok(state)
    }
}

impl TargetWriter for ScimClient {
    async fn send(&self, request: &ScimRequest) -> Result<ScimResponse, TargetError> {
        self.execute(request, &[]).await
    }
}
