//! Personal data on the ledger: commitments only, erasure final, by the member or the board.

use super::*;
use crate::personal::{self, commitment};
use coopledger_ledger::codec::b64_encode;

fn profile(m: &str, value: &str) -> Value {
    json!({"member": m, "attributes": {"name": b64_encode(commitment(&[7; 32], value))}})
}

#[test]
fn only_commitments_go_on_the_ledger_and_erasure_is_final() {
    let mut w = World::new();
    let m = w.member_of(3);
    let other = w.member_of(4);
    // Another member cannot file or erase a profile for m.
    assert_eq!(
        w.refused(4, "member.profile", profile(&m, "Ada")),
        "pii.member"
    );
    assert_eq!(
        w.refused(4, "member.erase", json!({"member": m})),
        "role.required"
    );
    assert_eq!(
        w.refused(3, "member.erase", json!({"member": m})),
        "pii.none"
    );
    assert_eq!(
        malformed_field(w.submit(
            3,
            "member.profile",
            json!({"member": m, "attributes": {"name": "Ada Lovelace"}})
        )),
        "body.payload.attributes.name",
        "a value in clear is not a commitment"
    );
    w.submit(3, "member.profile", profile(&m, "Ada")).unwrap();
    let r = personal::record(&w.s, &m).unwrap().unwrap();
    assert_eq!(
        r.attributes["name"],
        b64_encode(commitment(&[7; 32], "Ada"))
    );
    assert_eq!(
        w.refused(4, "member.erase", json!({"member": m})),
        "role.required"
    );
    // The board erases on the member's request; the member's own erasure would do too.
    w.submit(2, "member.erase", json!({"member": m})).unwrap();
    let r = personal::record(&w.s, &m).unwrap().unwrap();
    assert_eq!(r.erased.as_ref().map(|e| e.by.as_str()), Some("board"));
    assert_eq!(personal::erased_members(&w.s).unwrap(), vec![m.clone()]);
    assert_eq!(
        w.refused(3, "member.profile", profile(&m, "Ada")),
        "pii.erased"
    );
    assert_eq!(
        w.refused(3, "member.erase", json!({"member": m})),
        "pii.erased"
    );
    // The other member's data is untouched by it.
    w.submit(4, "member.profile", profile(&other, "Grace"))
        .unwrap();
    w.submit(4, "member.erase", json!({"member": other}))
        .unwrap();
    assert_eq!(personal::erased_members(&w.s).unwrap().len(), 2);
}
