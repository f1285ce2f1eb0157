//! Client assertions (RFC 7523, OpenID Connect's `private_key_jwt`): what a Graph source sends
//! to the token endpoint instead of a client secret.
//!
//! - A certificate: a JWT scimform signs with the private key of a certificate registered on the
//!   app, as Microsoft's "certificate credentials" page describes it: header `alg: PS256`,
//!   `typ: JWT`, `x5t#S256` (the base64url SHA-256 thumbprint of the certificate's DER); claims
//!   `aud` (the token endpoint), `iss` = `sub` = the client id, a fresh `jti`, `iat` = `nbf` =
//!   now and `exp` a few minutes later.
//! - A federated token: a JWT another issuer wrote to a file (a Kubernetes service-account
//!   token, a GitHub Actions OIDC token), sent as it is; the file is read for every token request
//!   because the scheduler rotates it.
#![allow(clippy::disallowed_methods, reason = "an assertion is dated by the clock; its files are read at the edge")]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PSS_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// The `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a signed assertion is good for: Microsoft asks for 5 to 10 minutes after `nbf`.
const LIFETIME: Duration = Duration::from_secs(600);

/// The private key of a certificate registered on the app, and the certificate's thumbprint.
pub struct SigningCertificate {
    key: RsaKeyPair,
    /// `x5t#S256`: base64url of the SHA-256 of the certificate's DER.
    thumbprint: String,
}

impl std::fmt::Debug for SigningCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCertificate").field("thumbprint", &self.thumbprint).finish_non_exhaustive()
    }
}

impl SigningCertificate {
    /// Reads the certificate and its key, and checks that the key is the certificate's.
    pub fn from_files(cert_file: &Path, key_file: &Path) -> Result<Self, String> {
        let read = |path: &Path| std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()));
        let cert_pem = read(cert_file)?;
        let cert = CertificateDer::pem_slice_iter(&cert_pem)
            .next()
            .ok_or_else(|| format!("`{}` holds no PEM certificate", cert_file.display()))?
            .map_err(|e| format!("`{}` is not a PEM certificate: {e}", cert_file.display()))?;
        let key_pem = read(key_file)?;
        // The PEM parser's error never quotes the key.
        let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
            Ok(PrivateKeyDer::Pkcs8(der)) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            Ok(PrivateKeyDer::Pkcs1(der)) => RsaKeyPair::from_der(der.secret_pkcs1_der()),
            Ok(_) => {
                return Err(format!(
                    "`{}` holds no RSA key: Entra signs certificates' assertions with RSA",
                    key_file.display()
                ));
            }
            Err(_) => {
                return Err(format!(
                    "`{}` holds no unencrypted PEM private key (`BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE KEY`)",
                    key_file.display()
                ));
            }
        }
        .map_err(|_| format!("`{}` holds no usable RSA key (2048 bits or more)", key_file.display()))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert)
            .map_err(|e| format!("`{}` is not an X.509 certificate: {e}", cert_file.display()))?;
        if parsed.public_key().subject_public_key.data.as_ref()
            != aws_lc_rs::signature::KeyPair::public_key(&key).as_ref()
        {
            return Err(format!("the key in `{}` is not the key of `{}`", key_file.display(), cert_file.display()));
        }
        Ok(Self { key, thumbprint: URL_SAFE_NO_PAD.encode(Sha256::digest(cert.as_ref())) })
    }

    /// A signed assertion for `client_id` at the token endpoint `audience`, dated `now`.
    pub fn assertion(&self, client_id: &str, audience: &str, now: SystemTime) -> Result<String, String> {
        let now = now.duration_since(UNIX_EPOCH).map_err(|_| "the clock is before 1970".to_owned())?.as_secs();
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| "no random numbers for the assertion's id".to_owned())?;
        let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint});
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid_text(jti),
            "iat": now,
            "nbf": now,
            "exp": now + LIFETIME.as_secs(),
        });
        let signed =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PSS_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature)
            .map_err(|_| "cannot sign the client assertion".to_owned())?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The token in a federated token file, read now (the scheduler rotates it).
pub fn federated_token(path: &PathBuf) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("`{}` is empty: the scheduler has not written its token", path.display()));
    }
    Ok(token.to_owned())
}

/// 16 random bytes as a version 4 UUID, the form Microsoft's examples give `jti`.
fn uuid_text(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String =
        bytes.iter().flat_map(|b| [b >> 4, b & 0x0f]).filter_map(|n| char::from_digit(u32::from(n), 16)).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}
