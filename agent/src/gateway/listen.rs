//! The gateway's listener: plain TCP on loopback, or TLS with the PEM
//! certificate chain and key named by `gateway.tls_cert` and
//! `gateway.tls_key` (required off loopback; the settings refuse an
//! address reachable from other machines without them, as they do for
//! `server.tcp`). Handshakes run in their own tasks, so a client that
//! stalls in one holds up nobody else; they are bounded in time.

use std::{io, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use omnipanel_core::{
    config::GatewaySettings,
    error::{Error, Result},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    },
    server::TlsStream,
};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener.
#[derive(Debug)]
pub enum Bound {
    /// Plain HTTP (loopback).
    Plain(TcpListener),
    /// HTTPS.
    Tls(TlsListener),
}

impl Bound {
    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Plain(listener) => listener.local_addr().ok(),
            Self::Tls(listener) => Some(listener.local),
        }
    }
}

/// Bind `addr`, with TLS when the settings name a certificate.
pub async fn bind(addr: SocketAddr, settings: &GatewaySettings) -> Result<Bound> {
    let listener = TcpListener::bind(addr).await.map_err(|err| {
        Error::failed_precondition(format!(
            "cannot listen on {addr} (gateway.listen in config.toml): {err}"
        ))
    })?;
    match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            let acceptor = TlsAcceptor::from(Arc::new(server_config(cert, key)?));
            let local = listener.local_addr().unwrap_or(addr);
            Ok(Bound::Tls(TlsListener::start(listener, acceptor, local)))
        }
        _ => Ok(Bound::Plain(listener)),
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).map_err(|err| {
            Error::failed_precondition(format!(
                "cannot read the gateway's TLS {what} {}: {err}",
                path.display()
            ))
        })
    };
    let cert_pem = read(cert, "certificate")?;
    let key_pem = read(key, "key")?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|err| {
            Error::failed_precondition(format!(
                "the gateway's TLS certificate {} is not PEM: {err}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(Error::failed_precondition(format!(
            "the gateway's TLS certificate {} holds no certificate",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| {
        Error::failed_precondition(format!(
            "the gateway's TLS key {} is not a PEM private key: {err}",
            key.display()
        ))
    })?;
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(chain, key_der)
        })
        .map(|mut config| {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            config
        })
        .map_err(|err| Error::failed_precondition(format!("gateway TLS setup failed: {err}")))
}

/// Accepts TCP connections and hands over those whose TLS handshake
/// succeeded.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn start(listener: TcpListener, acceptor: TlsAcceptor, local: SocketAddr) -> Self {
        let (sender, ready) = mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    // The server is gone: release the port.
                    () = sender.closed() => break,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        tracing::warn!(error = %err, "the gateway cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "gateway TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "gateway TLS handshake timed out"),
                    }
                });
            }
        });
        Self { ready, local }
    }
}

/// The peer's address, as handlers read it (`ConnectInfo<PeerAddr>`)
/// whichever listener accepted the connection.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>>
    for PeerAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The acceptor is gone (it never is while the listener
            // lives); wait for shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
