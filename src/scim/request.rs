//! A SCIM request as a value: what will be sent, built by pure code and sent by the client.
//! Keeping requests as data lets tests assert on them without HTTP.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        })
    }
}

/// One request. `path` is relative to the target's base URL (`/Users/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScimRequest {
    pub method: Method,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// `If-Match`: the resource version the change was planned against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_match: Option<String>,
    /// An `Idempotency-Key` chosen by the planner instead of the default digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

/// Lower-case hex sha256 of `parts`, each followed by a newline.
pub fn sha256_hex<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update(b"\n");
    }
    lower_hex(&hasher.finalize())
}

/// Bytes as lower-case hex.
pub fn lower_hex(bytes: &[u8]) -> String {
    // By digit, not through `format!`: a key or a digest is made for every user written.
    let digit = |nibble: u8| char::from_digit(u32::from(nibble), 16).unwrap_or('0');
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
        out.push(digit(byte >> 4));
        out.push(digit(byte & 0xf));
        out
    })
}

impl ScimRequest {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), body: None, if_match: None, idempotency_key: None }
    }

    #[must_use]
    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    #[must_use]
    pub fn with_if_match(mut self, version: Option<String>) -> Self {
        self.if_match = version;
        self
    }

    /// The `Idempotency-Key` for this write: the sha256 of method, path and canonical body, so
    /// the same write from two overlapping runs carries the same key.
    pub fn idempotency_key(&self) -> String {
        self.idempotency_key_for(self.wire_body().as_deref())
    }

    /// `idempotency_key`, given the body as sent (`wire_body`): a client serialises it once.
    pub fn idempotency_key_for(&self, wire_body: Option<&str>) -> String {
        if let Some(key) = &self.idempotency_key {
            return key.clone();
        }
        let body = wire_body.unwrap_or_default();
        sha256_hex([self.method.to_string().as_bytes(), self.path.as_bytes(), body.as_bytes()])
    }

    /// The body as sent. serde_json's maps are sorted: the same value always serialises to the
    /// same bytes.
    pub fn wire_body(&self) -> Option<String> {
        self.body.as_ref().map(ToString::to_string)
    }

    /// Whether the request changes the target.
    pub fn is_write(&self) -> bool {
        self.method != Method::Get
    }
}

impl fmt::Display for ScimRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// What the server answered to a request that succeeded (any 2xx).
#[derive(Debug, Clone, PartialEq)]
pub struct ScimResponse {
    pub status: u16,
    /// The resource, when the server sent one (PATCH may answer 204 with no body).
    pub body: Option<Value>,
    /// The `ETag` header, when present.
    pub etag: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lower_case_hex() {
        // `printf 'abc\n' | sha256sum`
        assert_eq!(sha256_hex([b"abc".as_slice()]), "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb");
        assert_eq!(lower_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }

    #[test]
    fn the_key_is_the_digest_of_the_body_as_sent() {
        let request = ScimRequest::new(Method::Patch, "/Users/1").with_body(serde_json::json!({"b": 1, "a": [true]}));
        assert_eq!(request.wire_body().as_deref(), Some(r#"{"a":[true],"b":1}"#));
        assert_eq!(request.idempotency_key(), sha256_hex([b"PATCH".as_slice(), b"/Users/1", br#"{"a":[true],"b":1}"#]));
    }
}
