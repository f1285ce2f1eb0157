//! Extra certificate authorities (`ca_file`) for every TLS connection: the LDAP source (rustls
//! through ldap3), the Graph source and the SCIM target (reqwest). The system roots stay trusted.

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// The certificates of a PEM file; a file with none is an error.
#[expect(clippy::disallowed_methods, reason = "a manifest's ca_file is read where a connection is set up")]
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("it holds no PEM certificate".into());
    }
    Ok(certs)
}

/// A rustls configuration trusting the system's roots plus the CAs in `ca_file`.
pub fn rustls_config(ca_file: &Path) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    for cert in read_ca_file(ca_file)? {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    Ok(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// The CAs in `ca_file`, for `reqwest::ClientBuilder::tls_certs_merge` (which keeps the system
/// roots).
pub fn reqwest_certificates(ca_file: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    read_ca_file(ca_file)?.iter().map(|der| reqwest::Certificate::from_der(der).map_err(|e| e.to_string())).collect()
}

/// A host on this machine: what is sent to it in clear text never crosses a network.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
