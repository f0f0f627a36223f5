//! Raft's own messages between replicas (openraft's `AppendEntriesRequest`, `VoteRequest`,
//! `InstallSnapshotRequest` and their answers), read strictly: openraft's types skip fields
//! they do not know, so [`strict`] refuses any JSON that is not exactly what the type writes.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// Why a message was refused: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{path}`: {reason}")]
pub struct StrictError {
    /// The field's path (`entries[0].payload`, or `$` for the whole message).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

/// Parses `value` as a `T`, refusing a field `T` does not have, and anything else `T` would
/// not write back the same (the sender writes with the same types, so a message from a replica
/// always comes back identical).
pub fn strict<T: Serialize + DeserializeOwned>(value: &Value) -> Result<T, StrictError> {
    let parsed = T::deserialize(value).map_err(|e| StrictError {
        path: "$".into(),
        reason: e.to_string(),
    })?;
    let back = serde_json::to_value(&parsed).map_err(|e| StrictError {
        path: "$".into(),
        reason: e.to_string(),
    })?;
    match first_difference(value, &back, "$") {
        None => Ok(parsed),
        Some(path) => Err(StrictError {
            path,
            reason: "not a field of this message, or not in the form it is written".into(),
        }),
    }
}

/// [`strict`] on the text of a message, as it arrived: the common case — the text is exactly
/// what `T` writes back — costs one parse and one write, with no JSON tree built; any other
/// text is judged as [`strict`] judges its tree (so spacing and key order do not matter, and a
/// refusal names the path). A key repeated in one object is refused (see [`tree`]).
pub fn strict_text<T: Serialize + DeserializeOwned>(text: &str) -> Result<T, StrictError> {
    let parsed: T = serde_json::from_str(text).map_err(|e| StrictError {
        path: "$".into(),
        reason: e.to_string(),
    })?;
    let back = serde_json::to_string(&parsed).map_err(|e| StrictError {
        path: "$".into(),
        reason: e.to_string(),
    })?;
    if back == text {
        return Ok(parsed);
    }
    let given = tree(text)?;
    let written: Value = serde_json::from_str(&back).map_err(|e| StrictError {
        path: "$".into(),
        reason: e.to_string(),
    })?;
    match first_difference(&given, &written, "$") {
        None => Ok(parsed),
        Some(path) => Err(StrictError {
            path,
            reason: "not a field of this message, or not in the form it is written".into(),
        }),
    }
}

/// The JSON tree of `text`, refusing a key repeated in one object, by its path: JSON leaves a
/// repeated key's meaning open (`serde_json`'s tree keeps the last value, a derived struct
/// refuses the text, a map keeps the last), so a message that repeats one has no single
/// meaning to judge, and two replicas could read it differently.
pub fn tree(text: &str) -> Result<Value, StrictError> {
    let repeated = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = serde::de::DeserializeSeed::deserialize(
        Tree {
            path: "$",
            repeated: &repeated,
        },
        &mut de,
    )
    .and_then(|value| de.end().map(|()| value));
    match (parsed, repeated.into_inner()) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(path)) => Err(StrictError {
            path,
            reason: "a key repeated in one object".into(),
        }),
        (Err(e), None) => Err(StrictError {
            path: "$".into(),
            reason: e.to_string(),
        }),
    }
}

/// Builds one JSON value at `path`, as `serde_json::Value` would, but records the path of a
/// repeated key in `repeated` and fails.
struct Tree<'a> {
    path: &'a str,
    repeated: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Tree<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Tree<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = format!("{}[{}]", self.path, items.len());
            let seed = Tree {
                path: &path,
                repeated: self.repeated,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = format!("{}.{key}", self.path);
            if object.contains_key(&key) {
                *self.repeated.borrow_mut() = Some(path);
                return Err(serde::de::Error::custom("a key repeated in one object"));
            }
            let seed = Tree {
                path: &path,
                repeated: self.repeated,
            };
            let value = map.next_value_seed(seed)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The path of the first place `given` differs from `written`, if any.
fn first_difference(given: &Value, written: &Value, path: &str) -> Option<String> {
    match (given, written) {
        (Value::Object(g), Value::Object(w)) => {
            if let Some(extra) = g.keys().find(|k| !w.contains_key(*k)) {
                return Some(format!("{path}.{extra}"));
            }
            w.iter().find_map(|(k, wv)| match g.get(k) {
                Some(gv) => first_difference(gv, wv, &format!("{path}.{k}")),
                None => Some(format!("{path}.{k}")),
            })
        }
        (Value::Array(g), Value::Array(w)) => {
            if g.len() != w.len() {
                return Some(path.to_owned());
            }
            g.iter()
                .zip(w)
                .enumerate()
                .find_map(|(i, (gv, wv))| first_difference(gv, wv, &format!("{path}[{i}]")))
        }
        (g, w) if g == w => None,
        _ => Some(path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        reason = "test code: a panic is a test failure with a message"
    )]

    use super::*;
    use openraft::raft::{AppendEntriesRequest, VoteRequest};
    use serde_json::json;

    fn vote() -> Value {
        json!({
            "vote": {"leader_id": {"term": 3, "node_id": 2}, "committed": false},
            "last_log_id": {"leader_id": {"term": 2, "node_id": 1}, "index": 40}
        })
    }

    #[test]
    fn a_message_as_written_parses() {
        let v: VoteRequest<u64> = strict(&vote()).unwrap();
        assert_eq!(v.vote.leader_id.term, 3);
        assert_eq!(serde_json::to_value(&v).unwrap(), vote());
    }

    #[test]
    fn an_unknown_field_is_refused_by_its_path() {
        let mut extra = vote();
        extra["vote"]["leader_id"]["weight"] = json!(9);
        let e = strict::<VoteRequest<u64>>(&extra).unwrap_err();
        assert_eq!(e.path, "$.vote.leader_id.weight");
        let mut top = vote();
        top["hint"] = json!("x");
        assert_eq!(strict::<VoteRequest<u64>>(&top).unwrap_err().path, "$.hint");
    }

    #[test]
    fn an_unknown_field_deep_in_an_entry_is_refused() {
        let append = json!({
            "vote": {"leader_id": {"term": 2, "node_id": 1}, "committed": true},
            "prev_log_id": null,
            "entries": [{
                "log_id": {"leader_id": {"term": 2, "node_id": 1}, "index": 1},
                "payload": "Blank",
                "note": 1
            }],
            "leader_commit": null
        });
        let e = strict::<AppendEntriesRequest<crate::Cluster>>(&append).unwrap_err();
        assert_eq!(e.path, "$.entries[0].note");
        let mut clean = append;
        clean["entries"][0].as_object_mut().unwrap().remove("note");
        strict::<AppendEntriesRequest<crate::Cluster>>(&clean).unwrap();
    }

    #[test]
    fn text_is_judged_as_its_tree_is() {
        let v: VoteRequest<u64> = strict(&vote()).unwrap();
        let exact = serde_json::to_string(&v).unwrap();
        assert_eq!(strict_text::<VoteRequest<u64>>(&exact).unwrap(), v);
        // Key order and spacing are not differences (`vote()` has its keys sorted); an unknown
        // field is, by its path; so is a wrong type.
        let sorted = vote().to_string();
        assert_ne!(sorted, exact);
        assert_eq!(strict_text::<VoteRequest<u64>>(&sorted).unwrap(), v);
        let spaced = serde_json::to_string_pretty(&vote()).unwrap();
        assert_eq!(strict_text::<VoteRequest<u64>>(&spaced).unwrap(), v);
        let mut extra = vote();
        extra["vote"]["leader_id"]["weight"] = json!(9);
        let e = strict_text::<VoteRequest<u64>>(&extra.to_string()).unwrap_err();
        assert_eq!(e.path, "$.vote.leader_id.weight");
        let mut bad = vote();
        bad["vote"]["committed"] = json!("yes");
        assert_eq!(
            strict_text::<VoteRequest<u64>>(&bad.to_string())
                .unwrap_err()
                .path,
            "$"
        );
        assert!(strict_text::<VoteRequest<u64>>("{").is_err());
    }

    #[test]
    fn a_repeated_key_is_refused_by_its_path() {
        // Found by the fuzz target `raft_message`: the entry's `payload` given twice, first in a
        // form the type refuses, then as `"Blank"`. serde_json's tree keeps the last and the
        // derived struct refuses the text, so the text must be refused however it is read.
        let text = r#"{"vote": {"leader_id": {"term": 2, "node_id": 1}, "committed": true},
            "prev_log_id": null,
            "entries": [{"log_id": {"leader_id": {"term": 2, "node_id": 1}, "index": 40},
                         "payload": {"Normal": 1}, "payload": "Blank"}],
            "leader_commit": null}"#;
        let e = strict_text::<AppendEntriesRequest<crate::Cluster>>(text).unwrap_err();
        assert_eq!(e.path, "$");
        let e = tree(text).unwrap_err();
        assert_eq!(e.path, "$.entries[0].payload");
        assert_eq!(e.reason, "a key repeated in one object");
        // Where the type itself would take the last value (a spaced vote with `term` twice),
        // the repetition is still refused.
        let twice = r#"{"vote": {"leader_id": {"term": 3, "term": 3, "node_id": 2}, "committed": false},
            "last_log_id": {"leader_id": {"term": 2, "node_id": 1}, "index": 40}}"#;
        assert!(strict_text::<VoteRequest<u64>>(twice).is_err());
        assert_eq!(tree(twice).unwrap_err().path, "$.vote.leader_id.term");
        // Without repetition the tree is serde_json's own.
        let plain = serde_json::to_string_pretty(&vote()).unwrap();
        assert_eq!(tree(&plain).unwrap(), vote());
        assert_eq!(
            tree("[1, -2, 3.5, null, \"x\", {}]").unwrap(),
            json!([1, -2, 3.5, null, "x", {}])
        );
        assert!(tree("{} x").is_err());
    }

    #[test]
    fn a_wrong_type_is_refused() {
        let mut bad = vote();
        bad["vote"]["committed"] = json!("yes");
        assert_eq!(strict::<VoteRequest<u64>>(&bad).unwrap_err().path, "$");
    }
}

/// `raft_purged`: a replica asks another how far it has purged its Raft log — after an
/// erasure, the answering replica waits until every other one has purged through the
/// erasure's Raft index (`docs/replication.md` §4). No parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeQuery {}

/// The answer to [`PurgeQuery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeMark {
    /// The Raft index through which this replica's Raft log is purged and scrubbed, after a
    /// snapshot at or past it was built from the state it reached (0: nothing purged).
    pub purged: u64,
}
