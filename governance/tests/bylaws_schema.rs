//! The published bylaws schema (`docs/bylaws/bylaws.schema.json`, printed by
//! `coop bylaws schema`) and the shipped examples agree with the rules: every example validates
//! against the schema and is accepted by `Bylaws::from_json` and by genesis; the default bylaws
//! are the one-member-one-vote example byte for byte; misspelt fields fail both the schema and
//! the rules.
//!
//! The validator below covers the JSON Schema keywords the schema uses (type, properties,
//! required, additionalProperties, propertyNames, pattern for the two patterns used, enum,
//! const, oneOf, not, items, minItems, minProperties, minimum, maximum, $ref to `#/$defs/…`),
//! and refuses a schema that uses any other, so the schema cannot silently outgrow it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a test failure with a message and a backtrace"
)]

use coopledger_governance::bylaws::Bylaws;
use serde_json::{json, Value};
use std::path::PathBuf;

fn docs(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/bylaws")
        .join(name)
}

fn load(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(docs(name)).unwrap()).unwrap()
}

const KNOWN: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "pattern",
    "enum",
    "const",
    "oneOf",
    "not",
    "items",
    "minItems",
    "minProperties",
    "minimum",
    "maximum",
];

/// The two patterns the schema uses, as code.
fn pattern_holds(pattern: &str, s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    match pattern {
        "^[a-z0-9_-]{1,64}$" => coopledger_governance::is_ident(s),
        "^(0|[1-9][0-9]*)/[1-9][0-9]*$" => s.split_once('/').is_some_and(|(n, d)| {
            digits(n) && digits(d) && (n == "0" || !n.starts_with('0')) && !d.starts_with('0')
        }),
        other => panic!("the schema uses a pattern this test does not know: {other}"),
    }
}

/// Errors of `v` against `schema` (empty: valid), each with its JSON path.
fn validate(root: &Value, schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    let s = schema.as_object().expect("a schema is an object");
    for k in s.keys() {
        assert!(KNOWN.contains(&k.as_str()), "unsupported keyword {k}");
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local $ref");
        validate(root, &root["$defs"][name], v, path, out);
    }
    if let Some(t) = s.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_u64() || v.is_i64(),
            other => panic!("type {other}"),
        };
        if !ok {
            out.push(format!("{path}: not of type {t}"));
            return;
        }
    }
    if let Some(c) = s.get("const") {
        if v != c {
            out.push(format!("{path}: must be {c}"));
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            out.push(format!("{path}: {v} is not one of {e:?}"));
        }
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str) {
        if !v.as_str().is_some_and(|t| pattern_holds(p, t)) {
            out.push(format!("{path}: does not match {p}"));
        }
    }
    if let Some(min) = s.get("minimum").and_then(Value::as_i64) {
        if v.as_i64().is_some_and(|n| n < min) {
            out.push(format!("{path}: below {min}"));
        }
    }
    if let Some(max) = s.get("maximum").and_then(Value::as_u64) {
        if v.as_u64().is_some_and(|n| n > max) {
            out.push(format!("{path}: above {max}"));
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                out.push(format!("{path}: fewer than {min} items"));
            }
        }
        if let Some(item) = s.get("items") {
            for (i, x) in items.iter().enumerate() {
                validate(root, item, x, &format!("{path}[{i}]"), out);
            }
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(min) = s.get("minProperties").and_then(Value::as_u64) {
            if (obj.len() as u64) < min {
                out.push(format!("{path}: fewer than {min} properties"));
            }
        }
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    out.push(format!("{path}.{r}: required"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, x) in obj {
            let child = format!("{path}.{k}");
            if let Some(names) = s.get("propertyNames") {
                validate(root, names, &Value::String(k.clone()), &child, out);
            }
            match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
                (Some(p), _) => validate(root, p, x, &child, out),
                (None, Some(Value::Bool(false))) => out.push(format!("{child}: unknown field")),
                (None, Some(extra)) => validate(root, extra, x, &child, out),
                (None, None) => {}
            }
        }
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        let passing = alts
            .iter()
            .filter(|a| {
                let mut e = Vec::new();
                validate(root, a, v, path, &mut e);
                e.is_empty()
            })
            .count();
        if passing != 1 {
            out.push(format!(
                "{path}: matches {passing} of the oneOf alternatives, not one"
            ));
        }
    }
    if let Some(n) = s.get("not") {
        let mut e = Vec::new();
        validate(root, n, v, path, &mut e);
        if e.is_empty() {
            out.push(format!("{path}: matches a forbidden form"));
        }
    }
}

fn errors(v: &Value) -> Vec<String> {
    let schema = load("bylaws.schema.json");
    let mut out = Vec::new();
    validate(&schema, &schema, v, "", &mut out);
    out
}

const EXAMPLES: &[&str] = &["one-member-one-vote.json", "class-weighted.json"];

#[test]
fn the_shipped_examples_validate_and_the_rules_accept_them() {
    for name in EXAMPLES {
        let v = load(name);
        assert_eq!(errors(&v), Vec::<String>::new(), "{name}");
        let b = Bylaws::from_json(&v).unwrap_or_else(|e| panic!("{name}: {e}"));
        // What the rules read writes back exactly as written.
        assert_eq!(serde_json::to_value(&b).unwrap(), v, "{name}");
    }
}

#[test]
fn the_default_bylaws_are_the_one_member_one_vote_example() {
    let default = serde_json::to_value(Bylaws::single_class()).unwrap();
    assert_eq!(default, load("one-member-one-vote.json"));
    assert!(errors(&default).is_empty());
}

#[test]
fn misspelt_or_inexact_bylaws_fail_the_schema_and_the_rules() {
    let base = load("class-weighted.json");
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "capPPM",
            Box::new(|v| v["voting"]["capPPM"] = json!(550_000)),
        ),
        (
            "minimumPPM",
            Box::new(|v| v["decisions"]["special"]["quorum"]["minimumPPM"] = json!(1)),
        ),
        (
            "both spellings",
            Box::new(|v| v["decisions"]["special"]["threshold"]["ratioPpm"] = json!(666_667)),
        ),
        (
            "a decimal ratio",
            Box::new(|v| v["decisions"]["special"]["threshold"]["ratio"] = json!("0.66")),
        ),
        (
            "an unknown decision kind",
            Box::new(|v| v["decisions"]["extraordinary"] = v["decisions"]["special"].clone()),
        ),
        (
            "an unknown voting mode",
            Box::new(|v| v["voting"]["mode"] = json!("quadratic")),
        ),
    ];
    for (what, edit) in cases {
        let mut v = base.clone();
        edit(&mut v);
        assert!(!errors(&v).is_empty(), "schema accepted {what}");
        assert!(Bylaws::from_json(&v).is_err(), "rules accepted {what}");
    }
}
