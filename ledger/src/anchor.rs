//! Anchoring checkpoints on a public chain (DESIGN §8), the chain-neutral part: what an anchor
//! commits to (the calldata), the [`AnchorChain`] trait the node's anchoring loop drives (so
//! other chains can follow), and the EVM encoding of the transaction that carries it —
//! Keccak-256, RLP and EIP-155 legacy transactions signed with secp256k1. Pure code: speaking
//! to a chain is the implementor's job, outside this crate.

use crate::hash::{sha256, Hash};
use std::future::Future;

/// Where an anchor transaction stands on its chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxPlace {
    /// The chain does not know it (dropped or replaced).
    Unknown,
    /// Known, not yet in a block.
    Pending,
    /// In block `height` whose id is `block`.
    Mined {
        /// Block height.
        height: u64,
        /// Block id (for EVM: the 0x-hex block hash).
        block: String,
    },
}

/// Why an operation on a chain failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The chain's address is not usable.
    #[error("chain address {url:?}: {reason}")]
    Address {
        /// The address given.
        url: String,
        /// Why not.
        reason: String,
    },
    /// The chain could not be reached, or did not answer in time.
    #[error("{call}: {source}")]
    Unreachable {
        /// The call (e.g. `eth_chainId`).
        call: String,
        /// The transport's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The chain answered with an error of its own.
    #[error("{call}: the chain refused: {message}")]
    Refused {
        /// The call.
        call: String,
        /// The chain's words.
        message: String,
    },
    /// The chain's answer is not what its protocol says.
    #[error("{call}: unexpected answer: {detail}")]
    Malformed {
        /// The call.
        call: String,
        /// What is wrong with it.
        detail: String,
    },
    /// Sending would cost more per unit of gas than the ceiling allows; nothing was sent.
    #[error(
        "the chain asks at least {asked} per gas, above the ceiling of {ceiling}: not sending"
    )]
    TooExpensive {
        /// The least the chain would take now (base fee plus tip, or gas price).
        asked: u128,
        /// The configured ceiling.
        ceiling: u128,
    },
    /// The transaction could not be signed.
    #[error("signing the transaction: {0}")]
    Signing(#[from] k256::ecdsa::Error),
}

/// A chain the node anchors checkpoints on. The anchoring loop needs only this: send an anchor,
/// find its transaction, and read the canonical chain to count confirmations and spot reorgs.
pub trait AnchorChain: Send + Sync {
    /// The chain's id (for EVM: the EIP-155 chain id).
    fn chain_id(&self) -> impl Future<Output = Result<u64, ChainError>> + Send;
    /// Sends a transaction carrying [`calldata`]`(origin, size, root)`; returns its id.
    fn send_anchor(
        &self,
        origin: &str,
        size: u64,
        root: &Hash,
    ) -> impl Future<Output = Result<String, ChainError>> + Send;
    /// Where transaction `tx` stands.
    fn locate(&self, tx: &str) -> impl Future<Output = Result<TxPlace, ChainError>> + Send;
    /// The height of the chain's head.
    fn head(&self) -> impl Future<Output = Result<u64, ChainError>> + Send;
    /// The id of the canonical block at `height`, if any.
    fn block_at(
        &self,
        height: u64,
    ) -> impl Future<Output = Result<Option<String>, ChainError>> + Send;
}

/// Fixed prefix of every anchor's calldata.
pub const CALLDATA_PREFIX: &[u8] = b"coopledger/v1/anchor\0";

/// `prefix ‖ SHA-256(origin) ‖ u64 BE size ‖ root`: 21 + 32 + 8 + 32 = 93 bytes.
pub fn calldata(origin: &str, size: u64, root: &Hash) -> Vec<u8> {
    [
        CALLDATA_PREFIX,
        &sha256(origin.as_bytes()).0,
        &size.to_be_bytes(),
        &root.0,
    ]
    .concat()
}

/// What an anchor's calldata commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchored {
    /// SHA-256 of the log's origin.
    pub origin_hash: Hash,
    /// Tree size.
    pub size: u64,
    /// Root.
    pub root: Hash,
}

/// Reads calldata written by [`calldata`]; `None` for anything else.
pub fn parse_calldata(data: &[u8]) -> Option<Anchored> {
    let rest = data.strip_prefix(CALLDATA_PREFIX)?;
    if rest.len() != 72 {
        return None;
    }
    let (o, rest) = rest.split_at(32);
    let (s, r) = rest.split_at(8);
    Some(Anchored {
        origin_hash: Hash::from_slice(o)?,
        size: u64::from_be_bytes(s.try_into().ok()?),
        root: Hash::from_slice(r)?,
    })
}

/// The EVM side: Keccak-256, RLP, EIP-155 legacy transactions.
pub mod evm {
    use k256::ecdsa::{SigningKey, VerifyingKey};
    use sha3::{Digest, Keccak256};

    /// Keccak-256 (Ethereum's hash, not SHA3-256).
    pub fn keccak256(data: &[u8]) -> [u8; 32] {
        Keccak256::digest(data).into()
    }

    /// RLP of a byte string (alloy-rlp).
    pub fn rlp_bytes(b: &[u8]) -> Vec<u8> {
        alloy_rlp::encode(b)
    }

    /// RLP of an unsigned integer: big-endian, no leading zeroes (zero is the empty string).
    pub fn rlp_uint(n: u128) -> Vec<u8> {
        alloy_rlp::encode(n)
    }

    /// RLP of a list of already-encoded items.
    pub fn rlp_list(items: &[Vec<u8>]) -> Vec<u8> {
        let payload_length = items.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(payload_length + 9);
        alloy_rlp::Header {
            list: true,
            payload_length,
        }
        .encode(&mut out);
        for i in items {
            out.extend_from_slice(i);
        }
        out
    }

    /// The 20-byte address of a secp256k1 key: the last 20 bytes of Keccak-256 of the
    /// uncompressed point without its 0x04 tag.
    pub fn address(key: &VerifyingKey) -> [u8; 20] {
        let point = key.to_encoded_point(false);
        let h = keccak256(point.as_bytes().get(1..).unwrap_or_default());
        let mut a = [0u8; 20];
        a.copy_from_slice(h.get(12..).unwrap_or(&[0u8; 20]));
        a
    }

    /// Signs a transaction's signing hash (RFC 6979, low-s): the parity of R's y and the RLP of
    /// `r` and `s` as unsigned integers.
    fn sign_hash(
        key: &SigningKey,
        hash: &[u8; 32],
    ) -> Result<(bool, Vec<u8>, Vec<u8>), k256::ecdsa::Error> {
        let (sig, recid) = key.sign_prehash_recoverable(hash)?;
        let (r, s) = sig.split_bytes();
        let strip = |b: &[u8]| -> Vec<u8> {
            let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            rlp_bytes(b.get(first..).unwrap_or_default())
        };
        Ok((recid.is_y_odd(), strip(&r), strip(&s)))
    }

    /// A legacy transaction, signed per EIP-155 (replay-protected by `chain_id`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LegacyTx {
        /// Sender's transaction count.
        pub nonce: u64,
        /// Wei per gas.
        pub gas_price: u128,
        /// Gas limit.
        pub gas: u64,
        /// Recipient.
        pub to: [u8; 20],
        /// Wei sent.
        pub value: u128,
        /// Calldata.
        pub data: Vec<u8>,
        /// Chain id.
        pub chain_id: u64,
    }

    impl LegacyTx {
        fn fields(&self) -> Vec<Vec<u8>> {
            vec![
                rlp_uint(u128::from(self.nonce)),
                rlp_uint(self.gas_price),
                rlp_uint(u128::from(self.gas)),
                rlp_bytes(&self.to),
                rlp_uint(self.value),
                rlp_bytes(&self.data),
            ]
        }

        /// The EIP-155 signing hash: `keccak(rlp([nonce, gasPrice, gas, to, value, data,
        /// chainId, 0, 0]))`.
        pub fn signing_hash(&self) -> [u8; 32] {
            let mut f = self.fields();
            f.push(rlp_uint(u128::from(self.chain_id)));
            f.push(rlp_uint(0));
            f.push(rlp_uint(0));
            keccak256(&rlp_list(&f))
        }

        /// Signs (RFC 6979, low-s) and returns the raw transaction and its hash.
        pub fn sign(&self, key: &SigningKey) -> Result<(Vec<u8>, [u8; 32]), k256::ecdsa::Error> {
            let (y_odd, r, s) = sign_hash(key, &self.signing_hash())?;
            let v = u128::from(self.chain_id) * 2 + 35 + u128::from(y_odd);
            let mut f = self.fields();
            f.push(rlp_uint(v));
            f.push(r);
            f.push(s);
            let raw = rlp_list(&f);
            let hash = keccak256(&raw);
            Ok((raw, hash))
        }
    }

    /// An EIP-1559 fee-market transaction (type 2, EIP-2718 envelope), with an empty access
    /// list.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Eip1559Tx {
        /// Chain id.
        pub chain_id: u64,
        /// Sender's transaction count.
        pub nonce: u64,
        /// Tip per gas to the block producer, in wei.
        pub max_priority_fee_per_gas: u128,
        /// Most paid per gas (base fee plus tip), in wei.
        pub max_fee_per_gas: u128,
        /// Gas limit.
        pub gas: u64,
        /// Recipient.
        pub to: [u8; 20],
        /// Wei sent.
        pub value: u128,
        /// Calldata.
        pub data: Vec<u8>,
    }

    impl Eip1559Tx {
        fn fields(&self) -> Vec<Vec<u8>> {
            vec![
                rlp_uint(u128::from(self.chain_id)),
                rlp_uint(u128::from(self.nonce)),
                rlp_uint(self.max_priority_fee_per_gas),
                rlp_uint(self.max_fee_per_gas),
                rlp_uint(u128::from(self.gas)),
                rlp_bytes(&self.to),
                rlp_uint(self.value),
                rlp_bytes(&self.data),
                rlp_list(&[]),
            ]
        }

        /// The signing hash: `keccak(0x02 ‖ rlp([chainId, nonce, maxPriorityFeePerGas,
        /// maxFeePerGas, gas, to, value, data, accessList]))`.
        pub fn signing_hash(&self) -> [u8; 32] {
            keccak256(&[&[0x02], rlp_list(&self.fields()).as_slice()].concat())
        }

        /// Signs (RFC 6979, low-s) and returns the raw transaction `0x02 ‖ rlp([…, yParity, r,
        /// s])` and its hash.
        pub fn sign(&self, key: &SigningKey) -> Result<(Vec<u8>, [u8; 32]), k256::ecdsa::Error> {
            let (y_odd, r, s) = sign_hash(key, &self.signing_hash())?;
            let mut f = self.fields();
            f.push(rlp_uint(u128::from(y_odd)));
            f.push(r);
            f.push(s);
            let raw = [&[0x02], rlp_list(&f).as_slice()].concat();
            let hash = keccak256(&raw);
            Ok((raw, hash))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::evm::*;
    use super::*;

    /// The example of EIP-155 itself (eips.ethereum.org/EIPS/eip-155, "Example"): nonce 9,
    /// 20 gwei, 21000 gas, to 0x3535…35, 1 ether, chain 1, key 0x4646…46.
    #[test]
    fn the_eip155_example_signs_to_the_published_bytes() {
        let tx = LegacyTx {
            nonce: 9,
            gas_price: 20_000_000_000,
            gas: 21_000,
            to: [0x35; 20],
            value: 1_000_000_000_000_000_000,
            data: vec![],
            chain_id: 1,
        };
        assert_eq!(
            hex::encode(tx.signing_hash()),
            "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
        );
        let key = k256::ecdsa::SigningKey::from_slice(&[0x46; 32]).unwrap();
        let (raw, _) = tx.sign(&key).unwrap();
        assert_eq!(
            hex::encode(raw),
            "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
        );
    }

    /// EIP-1559 vectors from ethereumjs-monorepo `packages/tx/test/json/eip1559.json` (their
    /// source: Hyperledger Besu): chain 7822, key 0x8f2a…be63, to 0x…aaaa, no data, no access
    /// list. The published `signedTransactionRLP` wraps the typed transaction in one more RLP
    /// string (`b873…`, `b872…`); the transaction itself follows that prefix.
    #[test]
    fn eip1559_vectors_sign_to_the_published_bytes() {
        let key = k256::ecdsa::SigningKey::from_slice(
            &hex::decode("8f2a55949038a9610f50fb23b5883af3b4ecb3c3bb792cbcefbd1542c692be63")
                .unwrap(),
        )
        .unwrap();
        let mut to = [0u8; 20];
        to[18] = 0xaa;
        to[19] = 0xaa;
        let cases = [
            (819, 43_203_529, 35_552, 75_853, 121_212, "b87302f870821e8e8203338301284d8301d97c828ae094000000000000000000000000000000000000aaaa8402933bc980c080a0d067f2167008c59219652f91cbf8788dbca5f771f6e91e2b7657e85b78b472e0a01d305af9fe81fdba43f0dfcd400ed24dcace0a7e30d4e85701dcaaf484cd079e"),
            (353, 61_901_619, 32_593, 38_850, 136_295, "b87202f86f821e8e8201618297c283021467827f5194000000000000000000000000000000000000aaaa8403b08b3380c001a004205678f13fc1d7b10feea6513dfa76e24418b6e08097d95c6f93a3b64e536da01d45ad61bfece43862de2cce7d2575a8c1d08c26c87f3cb5f26d7b0be54a91b2"),
            (119, 65_456_115, 62_341, 24_721, 107_729, "b87002f86d821e8e778260918301a4d182f38594000000000000000000000000000000000000aaaa8403e6c7f380c001a0e38e239770801eb995498c821e55ac9c19ae09184bb27b34be105e02fe3b7615a067c64ca6bd6d9107e85fd581ab2e70a14b637eb36505bb40861ef9d6e800cab6"),
        ];
        for (nonce, value, gas, tip, max_fee, wrapped) in cases {
            let tx = Eip1559Tx {
                chain_id: 7822,
                nonce,
                max_priority_fee_per_gas: tip,
                max_fee_per_gas: max_fee,
                gas,
                to,
                value,
                data: vec![],
            };
            let (raw, hash) = tx.sign(&key).unwrap();
            assert_eq!(hex::encode(&raw), wrapped[4..], "nonce {nonce}");
            assert_eq!(hash, keccak256(&raw));
        }
    }

    #[test]
    fn keccak_rlp_and_addresses_match_known_values() {
        // Keccak-256 of the empty string (not SHA3-256's a7ffc6f8…).
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        // RLP examples from the Ethereum yellow paper / wiki.
        assert_eq!(rlp_bytes(b"dog"), b"\x83dog");
        assert_eq!(rlp_uint(0), vec![0x80]);
        assert_eq!(rlp_uint(15), vec![0x0f]);
        assert_eq!(rlp_uint(1024), vec![0x82, 0x04, 0x00]);
        assert_eq!(rlp_list(&[]), vec![0xc0]);
        let long = vec![b'a'; 56];
        assert_eq!(rlp_bytes(&long)[..2], [0xb8, 56]);
        // anvil's first default account: key 0xac09…ff80 is address 0xf39F…2266.
        let key = k256::ecdsa::SigningKey::from_slice(
            &hex::decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            hex::encode(address(key.verifying_key())),
            "f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
    }

    #[test]
    fn calldata_commits_to_origin_size_and_root() {
        let root = sha256(b"root");
        let d = calldata("drivers.example.coop/ledger", 42, &root);
        assert_eq!(d.len(), 93);
        let a = parse_calldata(&d).unwrap();
        assert_eq!((a.size, a.root), (42, root));
        assert_eq!(a.origin_hash, sha256(b"drivers.example.coop/ledger"));
        assert!(parse_calldata(&d[1..]).is_none());
        assert!(parse_calldata(&[&d[..], &[0]].concat()).is_none());
    }
}
