//! Wire types of the `consent_*` and `revenue_*` reads: serialisable counterparts of the
//! governance records, converted here so a record refactor cannot change the public API (it
//! breaks a `From` instead). Signed formats — bundles, timelines (proved in bundles),
//! distributions (signed by the treasurer), allocation policies — are reused as they are.

use coopledger_governance::consent::{
    ConsentStatus, DataUse, Grant, GrantEnd, GrantStatus, Notice, Party, PartyKind, Period,
    StatusReport,
};
use coopledger_governance::revenue::{
    AllocationPolicy, Payment, PaymentStatus, PolicyInForce, Settlement, Unclaimed,
    UnclaimedTransfer,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A party's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyRole {
    /// Decides on the processing.
    Controller,
    /// Receives data.
    Recipient,
    /// A supervisory authority.
    Authority,
}

/// A registered party (`consent_parties`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartyView {
    /// Party id.
    pub id: String,
    /// Role.
    pub kind: PartyRole,
    /// Organisation name.
    pub name: String,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// Signing key (base64), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Log index of registration.
    pub index: u64,
}

impl From<Party> for PartyView {
    fn from(p: Party) -> PartyView {
        PartyView {
            id: p.id,
            kind: match p.kind {
                PartyKind::Controller => PartyRole::Controller,
                PartyKind::Recipient => PartyRole::Recipient,
                PartyKind::Authority => PartyRole::Authority,
            },
            name: p.name,
            jurisdiction: p.jurisdiction,
            key: p.key,
            index: p.index,
        }
    }
}

/// A consent notice version (`consent_notice(s)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeView {
    /// Notice id.
    pub notice: String,
    /// Version.
    pub version: u64,
    /// Controller party id.
    pub controller: String,
    /// Purposes (DPV).
    pub purposes: Vec<String>,
    /// Data categories.
    pub data_categories: Vec<String>,
    /// Processing operations.
    pub operations: Vec<String>,
    /// Recipient party ids.
    pub recipients: Vec<String>,
    /// Retention, ms.
    pub retention_ms: u64,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// Lawful basis.
    pub lawful_basis: String,
    /// SHA-256 of the text shown (base64).
    pub text_digest: String,
    /// Language (BCP 47).
    pub language: String,
    /// Special-category data.
    pub special_category: bool,
    /// Log index of publication.
    pub index: u64,
}

impl From<Notice> for NoticeView {
    fn from(n: Notice) -> NoticeView {
        NoticeView {
            notice: n.notice,
            version: n.version,
            controller: n.controller,
            purposes: n.purposes,
            data_categories: n.data_categories,
            operations: n.operations,
            recipients: n.recipients,
            retention_ms: n.retention_ms,
            jurisdiction: n.jurisdiction,
            lawful_basis: n.lawful_basis,
            text_digest: n.text_digest,
            language: n.language,
            special_category: n.special_category,
            index: n.index,
        }
    }
}

/// Where a consent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// Valid.
    Active,
    /// Granted for a later time.
    NotYetValid,
    /// Past its validity.
    Expired,
    /// Withdrawn by the member.
    Withdrawn,
    /// Revoked by the controller.
    Revoked,
    /// Invalidated by an authority.
    Invalidated,
    /// No grant.
    None,
}

impl From<ConsentStatus> for ConsentState {
    fn from(s: ConsentStatus) -> ConsentState {
        match s {
            ConsentStatus::Active => ConsentState::Active,
            ConsentStatus::NotYetValid => ConsentState::NotYetValid,
            ConsentStatus::Expired => ConsentState::Expired,
            ConsentStatus::Withdrawn => ConsentState::Withdrawn,
            ConsentStatus::Revoked => ConsentState::Revoked,
            ConsentStatus::Invalidated => ConsentState::Invalidated,
            ConsentStatus::None => ConsentState::None,
        }
    }
}

/// A validity period `[fromMs, untilMs)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeriodView {
    /// From (inclusive).
    pub from_ms: u64,
    /// Until (exclusive).
    pub until_ms: u64,
    /// Log index of the grant or renewal.
    pub index: u64,
}

/// How a grant ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "by")]
pub enum GrantEndView {
    /// Withdrawn by the member.
    Withdrawn {
        /// Log index.
        index: u64,
        /// Node time.
        ms: u64,
    },
    /// Revoked by the controller.
    Revoked {
        /// Log index.
        index: u64,
        /// Node time.
        ms: u64,
        /// Controller.
        party: String,
    },
    /// Invalidated by an authority.
    Invalidated {
        /// Log index.
        index: u64,
        /// Node time.
        ms: u64,
        /// Authority.
        party: String,
    },
}

/// A consent grant (`consent_grant(s)`), with its status as the node answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantView {
    /// Grant id (hex).
    pub id: String,
    /// Member id.
    pub member: String,
    /// Notice id.
    pub notice: String,
    /// Notice version.
    pub version: u64,
    /// Purposes granted.
    pub purposes: Vec<String>,
    /// Recipients granted.
    pub recipients: Vec<String>,
    /// Data categories granted.
    pub data_categories: Vec<String>,
    /// Validity periods.
    pub periods: Vec<PeriodView>,
    /// Log index of the grant.
    pub index: u64,
    /// Node time of the grant.
    pub ms: u64,
    /// How it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<GrantEndView>,
    /// Its status as of the node's newest checkpoint and clock when answering.
    pub status: ConsentState,
}

impl GrantView {
    /// The view of `g`, with its status at log index `index` and time `ms`.
    pub fn at(g: Grant, index: u64, ms: u64) -> GrantView {
        let status = g.status_at(index, ms).into();
        GrantView {
            id: g.id,
            member: g.member,
            notice: g.notice,
            version: g.version,
            purposes: g.purposes,
            recipients: g.recipients,
            data_categories: g.data_categories,
            periods: g
                .periods
                .into_iter()
                .map(|p: Period| PeriodView {
                    from_ms: p.from_ms,
                    until_ms: p.until_ms,
                    index: p.index,
                })
                .collect(),
            index: g.index,
            ms: g.ms,
            ended: g.ended.map(|e| match e {
                GrantEnd::Withdrawn { index, ms } => GrantEndView::Withdrawn { index, ms },
                GrantEnd::Revoked { index, ms, party } => {
                    GrantEndView::Revoked { index, ms, party }
                }
                GrantEnd::Invalidated { index, ms, party } => {
                    GrantEndView::Invalidated { index, ms, party }
                }
            }),
            status,
        }
    }
}

/// One covering grant in a status answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantStatusView {
    /// Grant id.
    pub grant: String,
    /// Status.
    pub status: ConsentState,
    /// Data categories it covers.
    pub data_categories: Vec<String>,
}

/// Where (member, purpose, recipient) stands (`consent_status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// Member id.
    pub member: String,
    /// Purpose.
    pub purpose: String,
    /// Recipient.
    pub recipient: String,
    /// As of this log index.
    pub at_index: u64,
    /// At this time, ms.
    pub at_ms: u64,
    /// The overall status.
    pub status: ConsentState,
    /// Each covering grant.
    pub grants: Vec<GrantStatusView>,
}

impl From<StatusReport> for StatusView {
    fn from(r: StatusReport) -> StatusView {
        StatusView {
            member: r.member,
            purpose: r.purpose,
            recipient: r.recipient,
            at_index: r.at_index,
            at_ms: r.at_ms,
            status: r.status.into(),
            grants: r
                .grants
                .into_iter()
                .map(|g: GrantStatus| GrantStatusView {
                    grant: g.grant,
                    status: g.status.into(),
                    data_categories: g.data_categories,
                })
                .collect(),
        }
    }
}

/// A recorded data use (`consent_dataUse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataUseView {
    /// Use id (hex).
    pub id: String,
    /// `release` or `sale`.
    pub kind: String,
    /// Recipient.
    pub recipient: String,
    /// Purpose.
    pub purpose: String,
    /// Data categories released.
    pub data_categories: Vec<String>,
    /// Grants relied on.
    pub consents: Vec<String>,
    /// Members whose data is in it.
    pub members: Vec<String>,
    /// SHA-256 of the dataset (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Log index.
    pub index: u64,
    /// Node time.
    pub ms: u64,
}

impl From<DataUse> for DataUseView {
    fn from(u: DataUse) -> DataUseView {
        DataUseView {
            id: u.id,
            kind: u.kind,
            recipient: u.recipient,
            purpose: u.purpose,
            data_categories: u.data_categories,
            consents: u.consents,
            members: u.members,
            dataset: u.dataset,
            index: u.index,
            ms: u.ms,
        }
    }
}

/// The allocation policy in force (`revenue_policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyView {
    /// The policy (its format is the one proposals carry).
    pub policy: AllocationPolicy,
    /// Adopting proposal (hex id).
    pub proposal: String,
    /// Log index of the adopting tally.
    pub tally_index: u64,
    /// Version.
    pub version: u64,
}

impl From<PolicyInForce> for PolicyView {
    fn from(p: PolicyInForce) -> PolicyView {
        PolicyView {
            policy: p.policy,
            proposal: p.proposal,
            tally_index: p.tally_index,
            version: p.version,
        }
    }
}

/// A payment attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    /// Member id.
    pub member: String,
    /// Minor units.
    pub amount: u64,
    /// Payment reference.
    pub reference: String,
    /// `paid` or `failed`.
    pub status: String,
    /// Log index.
    pub index: u64,
}

/// The transfer of unclaimed amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnclaimedView {
    /// Total moved.
    pub amount: u64,
    /// `reserve` or `community_fund`.
    pub to: String,
    /// Members whose lines were unpaid.
    pub members: Vec<String>,
    /// Log index.
    pub index: u64,
}

/// A distribution's settlement (`revenue_settlement`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementView {
    /// Log index of the distribution.
    pub index: u64,
    /// Its node time, ms.
    pub ms: u64,
    /// Latest payment attempt per member.
    pub payments: BTreeMap<String, PaymentView>,
    /// The unclaimed transfer, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unclaimed: Option<UnclaimedView>,
}

impl From<Settlement> for SettlementView {
    fn from(s: Settlement) -> SettlementView {
        SettlementView {
            index: s.index,
            ms: s.ms,
            payments: s
                .payments
                .into_iter()
                .map(|(m, p): (String, Payment)| {
                    (
                        m,
                        PaymentView {
                            member: p.member,
                            amount: p.amount,
                            reference: p.reference,
                            status: match p.status {
                                PaymentStatus::Paid => "paid".into(),
                                PaymentStatus::Failed => "failed".into(),
                            },
                            index: p.index,
                        },
                    )
                })
                .collect(),
            unclaimed: s.unclaimed.map(|u: UnclaimedTransfer| UnclaimedView {
                amount: u.amount,
                to: match u.to {
                    Unclaimed::Reserve => "reserve".into(),
                    Unclaimed::CommunityFund => "community_fund".into(),
                },
                members: u.members,
                index: u.index,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The API's JSON for a fixed grant and settlement: a change here is a change of the public
    /// API (docs/rpc.md), never a side effect of a record refactor.
    #[test]
    fn shapes_are_pinned() {
        let g = Grant {
            id: "cd".repeat(32),
            member: "m-0011223344556677".into(),
            notice: "research".into(),
            version: 2,
            purposes: vec!["dpv:ScientificResearch".into()],
            recipients: vec!["institute".into()],
            data_categories: vec!["pd:Dietary".into()],
            periods: vec![Period {
                from_ms: 10,
                until_ms: 100,
                index: 4,
            }],
            index: 4,
            ms: 10,
            ended: Some(GrantEnd::Withdrawn { index: 9, ms: 50 }),
        };
        assert_eq!(
            serde_json::to_value(GrantView::at(g, 20, 60)).unwrap(),
            json!({"id": "cd".repeat(32), "member": "m-0011223344556677", "notice": "research",
                   "version": 2, "purposes": ["dpv:ScientificResearch"],
                   "recipients": ["institute"], "dataCategories": ["pd:Dietary"],
                   "periods": [{"fromMs": 10, "untilMs": 100, "index": 4}], "index": 4, "ms": 10,
                   "ended": {"by": "withdrawn", "index": 9, "ms": 50}, "status": "withdrawn"})
        );
        let s = SettlementView::from(Settlement {
            index: 30,
            ms: 99,
            payments: BTreeMap::from([(
                "m-1".to_string(),
                Payment {
                    member: "m-1".into(),
                    amount: 500,
                    reference: "tx-1".into(),
                    status: PaymentStatus::Failed,
                    index: 31,
                },
            )]),
            unclaimed: None,
        });
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            json!({"index": 30, "ms": 99, "payments": {"m-1": {"member": "m-1", "amount": 500,
                   "reference": "tx-1", "status": "failed", "index": 31}}})
        );
    }
}
