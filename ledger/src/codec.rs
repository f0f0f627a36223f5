//! The one codec module: standard base64, and RFC 8785 (JCS) canonical JSON restricted to the
//! I-JSON subset the ledger accepts — integers only, within ±(2^53 − 1), no floats anywhere.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use std::fmt::Write as _;

/// Largest integer every JSON implementation represents exactly (I-JSON, RFC 7493 §2.2).
pub const MAX_SAFE_INTEGER: i64 = (1i64 << 53) - 1;

/// Standard base64 with padding (RFC 4648 §4).
pub fn b64_encode(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard, padded base64; rejects anything else (including non-canonical trailing bits).
pub fn b64_decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD.decode(s)
}

/// Why a JSON value has no canonical form here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// A number with a fraction or exponent, or one outside ±(2^53 − 1).
    #[error("field `{path}`: numbers must be integers within ±(2^53−1); floats are not allowed")]
    NotASafeInteger {
        /// JSON path of the offending number, e.g. `body.payload.amount`.
        path: String,
    },
}

/// Serialises `value` as RFC 8785 canonical JSON: object members sorted by the UTF-16 code units
/// of their names, no insignificant whitespace, strings escaped as ECMAScript `JSON.stringify`
/// does, and (our restriction) integers only. `path` names the value in errors.
pub fn canonical_json(value: &Value, path: &str) -> Result<Vec<u8>, CanonicalError> {
    let mut out = String::new();
    write_value(value, path, &mut out)?;
    Ok(out.into_bytes())
}

fn write_value(value: &Value, path: &str, out: &mut String) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let i = n
                .as_i64()
                .filter(|i| (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(i))
                .ok_or_else(|| CanonicalError::NotASafeInteger {
                    path: path.to_owned(),
                })?;
            let _ = write!(out, "{i}");
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, &format!("{path}[{i}]"), out)?;
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            // RFC 8785 §3.2.3: sort by UTF-16 code units, not by UTF-8 bytes or chars.
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                write_value(v, &child, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// RFC 8785 §3.2.2.2 string serialisation (ECMAScript `JSON.stringify` escaping).
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    // Runs of characters written as they are go in whole; only `"`, `\` and the control
    // characters are escaped (all ASCII, so a byte below 0x80 is always a whole character).
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x09 => "\\t",
            0x0A => "\\n",
            0x0C => "\\f",
            0x0D => "\\r",
            b if b < 0x20 => "",
            _ => continue,
        };
        out.push_str(s.get(run..i).unwrap_or_default());
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        run = i + 1;
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: &Value) -> String {
        String::from_utf8(canonical_json(v, "").unwrap()).unwrap()
    }

    #[test]
    fn sorts_members_and_drops_whitespace() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [1, 2, {"z": null, "a": true}], "a": "x" }"#).unwrap();
        assert_eq!(canon(&v), r#"{"a":"x","b":[1,2,{"a":true,"z":null}]}"#);
    }

    #[test]
    fn sorts_by_utf16_code_units() {
        // RFC 8785 §3.2.3 example ordering: U+E000 sorts *after* U+1F600 (a surrogate pair
        // starting 0xD83D) in UTF-16, although it sorts before it in UTF-8.
        let v = json!({"\u{e000}": 1, "\u{1f600}": 2, "a": 3});
        assert_eq!(canon(&v), "{\"a\":3,\"\u{1f600}\":2,\"\u{e000}\":1}");
    }

    #[test]
    fn escapes_like_json_stringify() {
        let v = json!("q\"b\\\u{08}\u{0c}\n\r\t\u{01}\u{1f}/\u{7f}é\u{2028}");
        assert_eq!(
            canon(&v),
            "\"q\\\"b\\\\\\b\\f\\n\\r\\t\\u0001\\u001f/\u{7f}é\u{2028}\""
        );
    }

    #[test]
    fn rejects_floats_and_unsafe_integers_naming_the_field() {
        let v: Value = serde_json::from_str(r#"{"payload":{"amount":1.5}}"#).unwrap();
        assert_eq!(
            canonical_json(&v, "body"),
            Err(CanonicalError::NotASafeInteger {
                path: "body.payload.amount".into()
            })
        );
        assert!(canonical_json(&json!(9007199254740992u64), "n").is_err());
        assert!(canonical_json(&json!(-9007199254740992i64), "n").is_err());
        assert_eq!(canon(&json!(9007199254740991u64)), "9007199254740991");
        assert_eq!(canon(&json!(-9007199254740991i64)), "-9007199254740991");
        let e: Value = serde_json::from_str("1e3").unwrap();
        assert!(canonical_json(&e, "n").is_err());
    }
}
