//! The node's accept loop: every connection on the node's listener, before HTTP. It enforces the
//! connection limits (in all, and per peer address, so one host cannot take every slot; loopback
//! peers — local tools, a reverse proxy — count only in all),
//! gives a TLS handshake 10 seconds when the node serves TLS (rustls), and hands each
//! connection to the JSON-RPC service until the server stops.

use jsonrpsee::server::StopHandle;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_rustls::rustls;

/// How long a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificate or key.
    #[error("TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// A TLS server configuration from a PEM certificate chain and a PEM private key.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pem = |path: &Path, reason: String| TlsError::Pem {
        path: path.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem(cert, "holds no certificate".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Limits on connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// In all.
    pub total: usize,
    /// From one peer address.
    pub per_peer: usize,
}

/// Open connections, in all and per peer; a slot is given back when its guard drops.
#[derive(Debug, Default)]
struct Slots {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
}

struct Slot {
    slots: Arc<Mutex<Slots>>,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut s = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.total = s.total.saturating_sub(1);
        if let Some(n) = s.per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_peer.remove(&self.peer);
            }
        }
    }
}

fn take(slots: &Arc<Mutex<Slots>>, peer: IpAddr, limits: ConnectionLimits) -> Option<Slot> {
    let mut s = slots
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mine = s.per_peer.get(&peer).copied().unwrap_or(0);
    // Loopback peers share one address — local tools, and the reverse proxy every remote
    // client comes through — so the per-peer limit would lock them all out together: only the
    // total applies to them.
    let per_peer_full = !peer.is_loopback() && mine >= limits.per_peer;
    if s.total >= limits.total || per_peer_full {
        return None;
    }
    s.total += 1;
    *s.per_peer.entry(peer).or_insert(0) += 1;
    Some(Slot {
        slots: slots.clone(),
        peer,
    })
}

/// A connection, plain or TLS.
pub(crate) trait Conn: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Conn for T {}

/// Serves one connection until it ends or the server stops.
pub(crate) type ServeConn =
    Arc<dyn Fn(Box<dyn Conn>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Accepts connections on `listener` until `stop` says so and hands each to `serve`, over TLS
/// when `tls` is given.
pub(crate) async fn accept_loop(
    listener: tokio::net::TcpListener,
    serve: ServeConn,
    stop: StopHandle,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: ConnectionLimits,
    open: prometheus_client::metrics::gauge::Gauge,
) {
    let slots: Arc<Mutex<Slots>> = Arc::default();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let (sock, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.clone().shutdown() => return,
        };
        // Over the limit: the connection is closed at once, before any HTTP.
        let Some(slot) = take(&slots, peer.ip(), limits) else {
            drop(sock);
            continue;
        };
        let _ = sock.set_nodelay(true);
        let serve = serve.clone();
        let acceptor = acceptor.clone();
        let open = Open::new(open.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let _open = open;
            match acceptor {
                Some(a) => match tokio::time::timeout(HANDSHAKE, a.accept(sock)).await {
                    Ok(Ok(tls)) => serve(Box::new(tls)).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
                None => serve(Box::new(sock)).await,
            }
        });
    }
}

/// Counts a connection in the `coop_connections_open` gauge while it lives.
struct Open(prometheus_client::metrics::gauge::Gauge);

impl Open {
    fn new(gauge: prometheus_client::metrics::gauge::Gauge) -> Open {
        gauge.inc();
        Open(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_in_all_and_per_peer_and_given_back() {
        let slots: Arc<Mutex<Slots>> = Arc::default();
        let limits = ConnectionLimits {
            total: 3,
            per_peer: 2,
        };
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = take(&slots, a, limits).unwrap();
        let _a2 = take(&slots, a, limits).unwrap();
        assert!(take(&slots, a, limits).is_none(), "a third from one peer");
        let _b1 = take(&slots, b, limits).unwrap();
        assert!(take(&slots, b, limits).is_none(), "a fourth in all");
        drop(a1);
        assert!(take(&slots, b, limits).is_some(), "a slot given back");
        // Loopback: only the total counts.
        let local: IpAddr = [127, 0, 0, 1].into();
        let slots: Arc<Mutex<Slots>> = Arc::default();
        let held: Vec<Slot> = (0..3).filter_map(|_| take(&slots, local, limits)).collect();
        assert_eq!(held.len(), 3);
    }
}
