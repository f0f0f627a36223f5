//! An EVM chain for anchoring: its ordinary JSON-RPC ([`EvmChain`]), the fee policy (EIP-1559
//! under a ceiling, or a legacy gas price), and [`EvmAnchorer`], the [`AnchorChain`] the loop
//! uses.

use crate::http::HttpClient;
use coopledger_ledger::anchor::{calldata, evm, AnchorChain, ChainError, TxPlace};
use k256::ecdsa::SigningKey;
use serde_json::{json, Value};
use std::time::Duration;

/// How much an anchor may cost, per gas, in wei.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePolicy {
    /// The tip to the block producer (EIP-1559 `maxPriorityFeePerGas`).
    pub tip: u128,
    /// The ceiling: no transaction is sent that could pay more per gas than this (EIP-1559
    /// `maxFeePerGas`, or a legacy chain's gas price).
    pub max_fee: u128,
}

impl Default for FeePolicy {
    /// A 1 gwei tip under a 100 gwei ceiling.
    fn default() -> FeePolicy {
        FeePolicy {
            tip: 1_000_000_000,
            max_fee: 100_000_000_000,
        }
    }
}

/// The fee of one transaction, decided from the chain's latest block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fee {
    /// EIP-1559: room for the base fee to double, plus the tip, capped by the ceiling.
    Market {
        /// `maxPriorityFeePerGas`.
        tip: u128,
        /// `maxFeePerGas`.
        max_fee: u128,
    },
    /// A chain without a base fee (before London): its suggested gas price.
    Legacy {
        /// Gas price.
        gas_price: u128,
    },
}

impl FeePolicy {
    /// The fee for a chain whose latest base fee is `base_fee` (`None` before London) and
    /// whose suggested legacy gas price is `gas_price`; refused when even the least that can
    /// be included now is above the ceiling.
    pub fn fee(&self, base_fee: Option<u128>, gas_price: u128) -> Result<Fee, ChainError> {
        match base_fee {
            Some(base) => {
                let least = base.saturating_add(self.tip);
                if least > self.max_fee {
                    return Err(ChainError::TooExpensive {
                        asked: least,
                        ceiling: self.max_fee,
                    });
                }
                let max_fee = base
                    .saturating_mul(2)
                    .saturating_add(self.tip)
                    .min(self.max_fee);
                Ok(Fee::Market {
                    tip: self.tip,
                    max_fee,
                })
            }
            None if gas_price > self.max_fee => Err(ChainError::TooExpensive {
                asked: gas_price,
                ceiling: self.max_fee,
            }),
            None => Ok(Fee::Legacy { gas_price }),
        }
    }
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

fn malformed(call: &str, detail: String) -> ChainError {
    ChainError::Malformed {
        call: call.to_owned(),
        detail,
    }
}

/// A hex quantity (`0x…`) of the answer to `call`.
fn quantity(call: &str, v: &Value) -> Result<u128, ChainError> {
    let s = v
        .as_str()
        .ok_or_else(|| malformed(call, format!("not a hex quantity: {v}")))?;
    u128::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|e| malformed(call, format!("{s}: {e}")))
}

fn quantity_u64(call: &str, v: &Value) -> Result<u64, ChainError> {
    let n = quantity(call, v)?;
    u64::try_from(n).map_err(|_| malformed(call, format!("{n} does not fit 64 bits")))
}

/// A transaction as the chain reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTx {
    /// Calldata.
    pub input: Vec<u8>,
    /// Block number, once mined.
    pub block_number: Option<u64>,
    /// Block hash (0x-hex), once mined.
    pub block_hash: Option<String>,
}

/// An EVM chain reached through its ordinary JSON-RPC (a plain JSON POST per call: this is
/// the chain's protocol, not the node's API).
#[derive(Debug, Clone)]
pub struct EvmChain {
    http: HttpClient,
    url: String,
}

impl EvmChain {
    /// A client for the chain at `url` (`http://…`).
    pub fn new(url: &str) -> Result<EvmChain, ChainError> {
        let refuse = |reason: &str| ChainError::Address {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if url.starts_with("https://") {
            return Err(refuse(
                "https chains are not supported yet; reach the chain through a local http \
                 endpoint",
            ));
        }
        if !url.starts_with("http://") {
            return Err(refuse("must start with http://"));
        }
        Ok(EvmChain {
            http: HttpClient::new(Duration::from_secs(10)),
            url: url.to_owned(),
        })
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, ChainError> {
        let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (status, body) = self
            .http
            .post(&self.url, "application/json", req.to_string().into_bytes())
            .await
            .map_err(|e| ChainError::Unreachable {
                call: method.to_owned(),
                source: Box::new(e),
            })?;
        let answer: Value = serde_json::from_slice(&body)
            .map_err(|e| malformed(method, format!("HTTP {status}, not JSON: {e}")))?;
        if let Some(err) = answer.get("error") {
            return Err(ChainError::Refused {
                call: method.to_owned(),
                message: err.to_string(),
            });
        }
        answer
            .get("result")
            .cloned()
            .ok_or_else(|| malformed(method, format!("HTTP {status}, no result")))
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        quantity_u64("eth_chainId", &self.call("eth_chainId", json!([])).await?)
    }

    /// `eth_blockNumber`.
    pub async fn head(&self) -> Result<u64, ChainError> {
        quantity_u64(
            "eth_blockNumber",
            &self.call("eth_blockNumber", json!([])).await?,
        )
    }

    /// The hash of block `n` on the canonical chain.
    pub async fn block_hash(&self, n: u64) -> Result<Option<String>, ChainError> {
        let b = self
            .call("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]))
            .await?;
        Ok(b.get("hash").and_then(Value::as_str).map(str::to_owned))
    }

    /// `eth_getTransactionByHash`.
    pub async fn transaction(&self, hash: &str) -> Result<Option<ChainTx>, ChainError> {
        const CALL: &str = "eth_getTransactionByHash";
        let t = self.call("eth_getTransactionByHash", json!([hash])).await?;
        if t.is_null() {
            return Ok(None);
        }
        let input = t
            .get("input")
            .and_then(Value::as_str)
            .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
            .ok_or_else(|| malformed(CALL, "transaction without input".into()))?;
        Ok(Some(ChainTx {
            input,
            block_number: t
                .get("blockNumber")
                .filter(|v| !v.is_null())
                .map(|v| quantity_u64(CALL, v))
                .transpose()?,
            block_hash: t
                .get("blockHash")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }))
    }

    /// Signs and sends a zero-value transaction to the sender's own address carrying `data`,
    /// with fees by `fees` (EIP-1559 where the chain has a base fee); returns its hash.
    pub async fn send(
        &self,
        key: &SigningKey,
        chain_id: u64,
        fees: &FeePolicy,
        data: Vec<u8>,
    ) -> Result<String, ChainError> {
        let from = evm::address(key.verifying_key());
        let nonce = quantity_u64(
            "eth_getTransactionCount",
            &self
                .call("eth_getTransactionCount", json!([hex0x(&from), "pending"]))
                .await?,
        )?;
        let latest = self
            .call("eth_getBlockByNumber", json!(["latest", false]))
            .await?;
        let base_fee = latest
            .get("baseFeePerGas")
            .filter(|v| !v.is_null())
            .map(|v| quantity("eth_getBlockByNumber", v))
            .transpose()?;
        let gas_price = match base_fee {
            Some(_) => 0,
            None => quantity("eth_gasPrice", &self.call("eth_gasPrice", json!([])).await?)?,
        };
        let (raw, hash) = match fees.fee(base_fee, gas_price)? {
            Fee::Market { tip, max_fee } => evm::Eip1559Tx {
                chain_id,
                nonce,
                max_priority_fee_per_gas: tip,
                max_fee_per_gas: max_fee,
                gas: 100_000,
                to: from,
                value: 0,
                data,
            }
            .sign(key)?,
            Fee::Legacy { gas_price } => evm::LegacyTx {
                nonce,
                gas_price,
                gas: 100_000,
                to: from,
                value: 0,
                data,
                chain_id,
            }
            .sign(key)?,
        };
        let sent = self
            .call("eth_sendRawTransaction", json!([hex0x(&raw)]))
            .await?;
        let want = hex0x(&hash);
        if sent.as_str() != Some(want.as_str()) {
            return Err(malformed(
                "eth_sendRawTransaction",
                format!("the chain reports tx {sent}, expected {want}"),
            ));
        }
        Ok(want)
    }
}

/// An [`EvmChain`] with the key that pays for anchors: the EVM [`AnchorChain`].
#[derive(Clone)]
pub struct EvmAnchorer {
    chain: EvmChain,
    key: SigningKey,
    fees: FeePolicy,
}

impl std::fmt::Debug for EvmAnchorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvmAnchorer").finish_non_exhaustive()
    }
}

impl EvmAnchorer {
    /// Anchors on `chain`, paying with `key` within `fees`.
    pub fn new(chain: EvmChain, key: SigningKey, fees: FeePolicy) -> EvmAnchorer {
        EvmAnchorer { chain, key, fees }
    }
}

impl AnchorChain for EvmAnchorer {
    async fn chain_id(&self) -> Result<u64, ChainError> {
        self.chain.chain_id().await
    }
    async fn send_anchor(
        &self,
        origin: &str,
        size: u64,
        root: &coopledger_ledger::Hash,
    ) -> Result<String, ChainError> {
        let id = self.chain.chain_id().await?;
        self.chain
            .send(&self.key, id, &self.fees, calldata(origin, size, root))
            .await
    }
    async fn locate(&self, tx: &str) -> Result<TxPlace, ChainError> {
        Ok(match self.chain.transaction(tx).await? {
            None => TxPlace::Unknown,
            Some(ChainTx {
                block_number: Some(height),
                block_hash: Some(block),
                ..
            }) => TxPlace::Mined { height, block },
            Some(_) => TxPlace::Pending,
        })
    }
    async fn head(&self) -> Result<u64, ChainError> {
        self.chain.head().await
    }
    async fn block_at(&self, height: u64) -> Result<Option<String>, ChainError> {
        self.chain.block_hash(height).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_leave_room_for_the_base_fee_and_never_pass_the_ceiling() {
        let p = FeePolicy {
            tip: 2,
            max_fee: 100,
        };
        assert!(matches!(
            p.fee(Some(10), 0),
            Ok(Fee::Market {
                tip: 2,
                max_fee: 22
            })
        ));
        // Capped: 2 × 60 + 2 > 100, but 60 + 2 can still be included.
        for base in [60, 98] {
            assert!(matches!(
                p.fee(Some(base), 0),
                Ok(Fee::Market {
                    tip: 2,
                    max_fee: 100
                })
            ));
        }
        assert!(matches!(
            p.fee(Some(99), 0),
            Err(ChainError::TooExpensive {
                asked: 101,
                ceiling: 100
            })
        ));
        // Before London: the suggested price, as it is, within the ceiling.
        assert!(matches!(p.fee(None, 40), Ok(Fee::Legacy { gas_price: 40 })));
        assert!(p.fee(None, 101).is_err());
        assert!(FeePolicy::default().tip < FeePolicy::default().max_fee);
    }
}
