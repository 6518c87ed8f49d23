//! JSON parsing that refuses a key repeated in one object. serde_json keeps
//! the last of two equal keys; a proxy or a client library may keep the
//! first, so a body with `{"token": "a", "token": "b"}` could mean one
//! thing to whoever checked it and another to us.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::body::escape_pointer;

/// Why a body did not parse.
#[derive(Debug)]
pub enum StrictJsonError {
    /// Not JSON: line and column of the problem.
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A key appears twice in one object; the pointer of the second.
    DuplicateKey(String),
}

/// Parses `bytes` as one JSON value, refusing repeated keys.
///
/// # Errors
/// [`StrictJsonError`].
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Seed { at: String::new() }.deserialize(&mut deserializer).and_then(|value| {
        deserializer.end()?;
        Ok(value)
    });
    value.map_err(|error| {
        let text = error.to_string();
        match text.strip_prefix(DUPLICATE).and_then(|rest| rest.split(" at line ").next()) {
            Some(pointer) => StrictJsonError::DuplicateKey(pointer.to_owned()),
            None => StrictJsonError::Syntax { line: error.line(), column: error.column() },
        }
    })
}

const DUPLICATE: &str = "duplicate key at ";

/// Builds a value, knowing where in the document it is.
struct Seed {
    at: String,
}

impl<'de> DeserializeSeed<'de> for Seed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Seed { at: format!("{}/{}", self.at, items.len()) })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = format!("{}/{}", self.at, escape_pointer(&key));
            if object.contains_key(&key) {
                return Err(A::Error::custom(format!("{DUPLICATE}{at}")));
            }
            let value = map.next_value_seed(Seed { at })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_named_by_pointer() {
        let found = parse(br#"{"credentials": {"token": "a", "token": "b"}}"#);
        assert!(matches!(found, Err(StrictJsonError::DuplicateKey(p)) if p == "/credentials/token"));
        let found = parse(br#"{"a": [{"x/y": 1, "x/y": 2}]}"#);
        assert!(matches!(found, Err(StrictJsonError::DuplicateKey(p)) if p == "/a/0/x~1y"));
    }

    #[test]
    fn the_same_value_as_serde_json_otherwise() {
        let text = br#"{"a": [1, -2, 3.5, "s", null, true, {"b": {}}], "c": "\u00e9"}"#;
        assert_eq!(parse(text).unwrap(), serde_json::from_slice::<Value>(text).unwrap());
        assert!(matches!(parse(b"{\"a\": 1} x"), Err(StrictJsonError::Syntax { line: 1, .. })));
        assert!(matches!(parse(b"{\"a\": "), Err(StrictJsonError::Syntax { .. })));
    }
}
