//! Reaching the directory: LDAPS, StartTLS or plain LDAP to loopback only, the CA file, the
//! bind.

use std::sync::Arc;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};

use super::LdapSource;
use super::entry::host_of;
use crate::source::SourceError;
use crate::tls::is_loopback;

impl LdapSource {
    /// Connects and binds.
    pub(super) async fn connect(&self) -> Result<Ldap, SourceError> {
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
}
