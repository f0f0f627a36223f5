//! Membership: genesis and its founders, applications and admission, keys, classes, roles,
//! suspension, expulsion and withdrawal. The records (`MemberRecord`, `Application`,
//! `KeyRecord`) and their queries are in `records`, shared with every domain that asks who
//! may sign.

pub mod genesis;
pub(crate) mod rules;
