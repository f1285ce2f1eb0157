//! TLS for the PostgreSQL state store: tokio-postgres's connector traits over tokio-rustls
//! (already in the tree through reqwest and ldap3, with the same aws-lc-rs provider; an adapter
//! crate would bring `ring` as a second provider). The system roots are trusted (`SSL_CERT_FILE`
//! included), plus the URL's `sslrootcert`; the server's certificate must name the host. No
//! channel binding: SCRAM authenticates without it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// Makes a TLS connection per PostgreSQL connection.
#[derive(Clone)]
pub struct MakeRustls(Arc<rustls::ClientConfig>);

impl MakeRustls {
    /// Trusting the system's roots (`SSL_CERT_FILE` included).
    pub fn with_system_roots() -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        Self(Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth()))
    }

    /// Trusting the system's roots and the CAs in `ca_file`.
    pub fn with_ca_file(ca_file: &std::path::Path) -> Result<Self, String> {
        Ok(Self(Arc::new(crate::tls::rustls_config(ca_file)?)))
    }
}

pub struct Connect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<Connect> {
        let name =
            ServerName::try_from(domain.to_owned()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Connect { config: Arc::clone(&self.0), name })
    }
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let connector = tokio_rustls::TlsConnector::from(self.config);
            Ok(Stream(connector.connect(self.name, stream).await?))
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}
