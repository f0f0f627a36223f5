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

/// What went wrong with a call, as a person (or a script) needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The node answered and refused the request: a co-op rule, a bad signature, an unknown id.
    Refused {
        /// The rule (`use.withdrawn`) for a rule violation, else the code's name (`NOT_FOUND`).
        reason: String,
        /// The node's message.
        message: String,
        /// The field `data.field` names, when the message does not already say it.
        field: Option<String>,
    },
    /// The node could not be reached, timed out, or is not serving (overloaded, stopped,
    /// failing storage): try again later.
    Unavailable {
        /// What happened.
        cause: String,
    },
}

impl Failure {
    /// The one line a person reads: `refused (rule): <doing>: <message> (field f)` or
    /// `node unavailable: <doing>: <cause>`; `doing` is what the command was doing (may be
    /// empty, else it ends with ": ").
    pub fn line(&self, doing: &str) -> String {
        match self {
            Failure::Refused {
                reason,
                message,
                field,
            } => {
                let field = field
                    .as_ref()
                    .map(|f| format!(" (field {f})"))
                    .unwrap_or_default();
                format!("refused ({reason}): {doing}{message}{field}")
            }
            Failure::Unavailable { cause } => format!("node unavailable: {doing}{cause}"),
        }
    }
}

/// Classifies a client error; `None` for errors of the client itself (a response it cannot
/// parse, a bad URL).
pub fn failure(e: &jsonrpsee::core::ClientError) -> Option<Failure> {
    use jsonrpsee::core::ClientError as E;
    match e {
        E::Call(obj) => {
            let code = obj.code();
            const JSON_RPC: &[(i32, &str, &str)] = &[
                (-32700, "PARSE_ERROR", ""),
                (-32600, "INVALID_REQUEST", ""),
                (-32601, "METHOD_NOT_FOUND", ""),
                (-32602, "INVALID_PARAMS", ""),
            ];
            let name = crate::error::TABLE
                .iter()
                .chain(JSON_RPC)
                .find(|(c, _, _)| *c == code)
                .map(|(_, n, _)| (*n).to_owned());
            let data: Option<serde_json::Value> =
                obj.data().and_then(|d| serde_json::from_str(d.get()).ok());
            let get = |k: &str| {
                data.as_ref()
                    .and_then(|d| d.get(k))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            let message = obj.message().to_owned();
            if matches!(
                code,
                crate::error::code::OVERLOADED
                    | crate::error::code::UNAVAILABLE
                    | crate::error::code::STORAGE
                    | crate::error::code::NO_QUORUM
                    | crate::error::code::NOT_LEADER
            ) {
                return Some(Failure::Unavailable { cause: message });
            }
            let field = get("field").filter(|f| !message.contains(f.as_str()));
            let rule = get("rule");
            // The node's message repeats the rule ("rule `x`: …"); the reason already says it.
            let message = rule
                .as_ref()
                .and_then(|r| message.strip_prefix(&format!("rule `{r}`: ")))
                .map(str::to_owned)
                .unwrap_or(message);
            Some(Failure::Refused {
                reason: rule.or(name).unwrap_or_else(|| format!("code {code}")),
                message,
                field,
            })
        }
        E::Transport(t) => Some(Failure::Unavailable {
            cause: transport_cause(t.as_ref()),
        }),
        E::RequestTimeout => Some(Failure::Unavailable {
            cause: "no answer within 60 s".into(),
        }),
        E::RestartNeeded(inner) => failure(inner),
        _ => None,
    }
}

/// The innermost cause of a transport error, in a few words ("Connection refused").
fn transport_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        last = c.to_string();
        cur = c.source();
    }
    last.split(" (os error").next().unwrap_or(&last).to_owned()
}
