//! A JSON-over-HTTP/1.1 client holding one keep-alive connection, as one client device would.

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;

/// How long one request may take before the run is declared failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: http::Uri,
}

impl Http {
    /// A client of `url` (`http://host:port/…`) with a connection pool of its own.
    pub fn new(url: &str) -> Result<Http> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(connector);
        let uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        Ok(Http { client, uri })
    }

    /// POSTs `body` (JSON) and returns the JSON answer.
    pub async fn post(&self, body: String) -> Result<Value> {
        let req = http::Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, bytes))
        })
        .await
        .map_err(|_| anyhow!("no answer from {} in {REQUEST_TIMEOUT:?}", self.uri))??;
        let (status, bytes) = answer;
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!(
                "HTTP {status} from {}, not JSON ({e}): {}",
                self.uri,
                String::from_utf8_lossy(bytes.get(..200).unwrap_or(&bytes))
            )
        })
    }

    /// GETs `path` on the same host and returns the body as text.
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let mut parts = self.uri.clone().into_parts();
        parts.path_and_query = Some(path.parse()?);
        let uri = http::Uri::from_parts(parts)?;
        let req = http::Request::get(uri).body(Full::new(Bytes::new()))?;
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| anyhow!("no answer in {REQUEST_TIMEOUT:?}"))??;
        let bytes = resp.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Calls JSON-RPC `method` with `params` (JSON text of the params array) and returns its
    /// result, or the error object as an error.
    pub async fn call(&self, method: &str, params: &str) -> Result<Value> {
        let mut answer = self
            .post(format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#
            ))
            .await?;
        match answer.get_mut("result").map(Value::take) {
            Some(r) => Ok(r),
            None => Err(anyhow!(
                "{method} failed: {}",
                answer.get("error").unwrap_or(&answer)
            )),
        }
    }
}
