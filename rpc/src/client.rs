//! Typed clients: `LedgerApiClient` methods work on both.

use std::time::Duration;

pub use jsonrpsee::http_client::HttpClient;
pub use jsonrpsee::ws_client::WsClient;

/// An HTTP client for a node at `url` (e.g. `http://127.0.0.1:7341`).
pub fn http_client(url: &str) -> Result<HttpClient, jsonrpsee::core::ClientError> {
    jsonrpsee::http_client::HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(60))
        .build(url)
}

/// A WebSocket client (needed for subscriptions), e.g. `ws://127.0.0.1:7341`.
pub async fn ws_client(url: &str) -> Result<WsClient, jsonrpsee::core::ClientError> {
    jsonrpsee::ws_client::WsClientBuilder::default()
        .request_timeout(Duration::from_secs(60))
        .build(url)
        .await
}
