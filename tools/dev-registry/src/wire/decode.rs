//! Strict, Go-flavoured JSON decoding: unknown keys rejected, keys matched case-insensitively.
//!
//! Consul decodes request bodies with Go's `encoding/json` and `DisallowUnknownFields`
//! (reference §0 "Strict JSON decoding"). Go matches object keys to struct fields
//! case-insensitively (an exact match wins), treats `null` as "leave the zero value",
//! and reports type mismatches as `json: cannot unmarshal …`. This module reproduces
//! those rules over a [`serde_json::Value`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::duration::{self, InvalidDuration};

/// Why a request body could not be decoded; rendered after `Request decode failed: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    /// The body was empty (Go's `io.EOF`).
    #[error("EOF")]
    Eof,
    /// The body is not valid JSON.
    #[error("{0}")]
    Syntax(String),
    /// An object key that matches no field.
    #[error("json: unknown field {}", duration::go_quote(.0))]
    UnknownField(String),
    /// A value of the wrong JSON type for its field.
    #[error("json: cannot unmarshal {found} into Go struct field {field} of type {expected}")]
    Type {
        /// The JSON kind found, as Go names it (`string`, `number 1.5`, `object`, …).
        found: String,
        /// `Struct.Field`.
        field: String,
        /// The Go type expected.
        expected: &'static str,
    },
    /// The top-level value is not an object.
    #[error("json: cannot unmarshal {found} into Go value of type {expected}")]
    TopLevel {
        /// The JSON kind found.
        found: String,
        /// The Go type expected.
        expected: &'static str,
    },
    /// A duration string Go's `time.ParseDuration` rejects.
    #[error(transparent)]
    Duration(#[from] InvalidDuration),
}

/// Parses the first JSON value of a request body, as Go's `json.Decoder.Decode` does.
///
/// Trailing data after the first value is ignored, like Go.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Eof);
    }
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    match values.next() {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) if e.is_eof() => Err(DecodeError::Syntax("unexpected EOF".to_owned())),
        Some(Err(e)) => Err(DecodeError::Syntax(format!("invalid JSON: {e}"))),
        None => Err(DecodeError::Eof),
    }
}

/// The fields of one JSON object, resolved against a struct's field list.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    /// Go type name used in error messages (`ServiceDefinition`).
    type_name: &'static str,
    /// Field name (canonical spelling) → value; `null` values are left out.
    values: BTreeMap<&'static str, &'a Value>,
}

impl<'a> Fields<'a> {
    /// Resolves `value` (an object, or `null` for "all zero") against `known` field names.
    ///
    /// Returns `None` for `null`. Keys are matched exactly first, then ignoring ASCII case.
    pub(crate) fn new(
        value: &'a Value,
        type_name: &'static str,
        field: Option<&str>,
        known: &[&'static str],
    ) -> Result<Option<Self>, DecodeError> {
        let object: &Map<String, Value> = match value {
            Value::Null => return Ok(None),
            Value::Object(object) => object,
            other => {
                return Err(match field {
                    Some(field) => DecodeError::Type {
                        found: kind(other),
                        field: field.to_owned(),
                        expected: type_name,
                    },
                    None => DecodeError::TopLevel {
                        found: kind(other),
                        expected: type_name,
                    },
                });
            }
        };
        let mut values = BTreeMap::new();
        for (key, value) in object {
            let name = known
                .iter()
                .find(|name| **name == key)
                .or_else(|| known.iter().find(|name| name.eq_ignore_ascii_case(key)))
                .ok_or_else(|| DecodeError::UnknownField(key.clone()))?;
            if !value.is_null() {
                values.insert(*name, value);
            }
        }
        Ok(Some(Self { type_name, values }))
    }

    /// The same fields, with another type name for field paths in error messages
    /// (Go names the top-level type with its package, fields without).
    pub(crate) fn renamed(self, type_name: &'static str) -> Self {
        Self { type_name, ..self }
    }

    /// The raw value of a field, `None` when absent or `null`.
    pub(crate) fn raw(&self, name: &'static str) -> Option<&'a Value> {
        self.values.get(name).copied()
    }

    /// `Struct.Field` for error messages.
    pub(crate) fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.type_name)
    }

    /// A Go `string` field.
    pub(crate) fn string(&self, name: &'static str) -> Result<String, DecodeError> {
        match self.raw(name) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.mismatch(name, other, "string")),
        }
    }

    /// A Go `bool` field.
    pub(crate) fn bool(&self, name: &'static str) -> Result<bool, DecodeError> {
        match self.raw(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.mismatch(name, other, "bool")),
        }
    }

    /// A Go `int` field (64-bit).
    pub(crate) fn int(&self, name: &'static str) -> Result<i64, DecodeError> {
        match self.raw(name) {
            None => Ok(0),
            Some(Value::Number(n)) => n.as_i64().ok_or_else(|| DecodeError::Type {
                found: format!("number {n}"),
                field: self.path(name),
                expected: "int",
            }),
            Some(other) => Err(self.mismatch(name, other, "int")),
        }
    }

    /// A Go `[]string` field; `null` elements become `""` as in Go.
    pub(crate) fn strings(&self, name: &'static str) -> Result<Vec<String>, DecodeError> {
        match self.raw(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Null => Ok(String::new()),
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.mismatch(name, other, "string")),
                })
                .collect(),
            Some(other) => Err(self.mismatch(name, other, "[]string")),
        }
    }

    /// A Go `map[string]string` field; `None` when absent or `null`.
    pub(crate) fn string_map(
        &self,
        name: &'static str,
    ) -> Result<Option<BTreeMap<String, String>>, DecodeError> {
        match self.raw(name) {
            None => Ok(None),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::Null => Ok((k.clone(), String::new())),
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(self.mismatch(name, other, "string")),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(other) => Err(self.mismatch(name, other, "map[string]string")),
        }
    }

    /// A Go `map[string][]string` field (HTTP headers).
    pub(crate) fn header_map(
        &self,
        name: &'static str,
    ) -> Result<BTreeMap<String, Vec<String>>, DecodeError> {
        match self.raw(name) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::Null => Ok((k.clone(), Vec::new())),
                    Value::Array(items) => items
                        .iter()
                        .map(|item| match item {
                            Value::Null => Ok(String::new()),
                            Value::String(s) => Ok(s.clone()),
                            other => Err(self.mismatch(name, other, "string")),
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(|values| (k.clone(), values)),
                    other => Err(self.mismatch(name, other, "[]string")),
                })
                .collect(),
            Some(other) => Err(self.mismatch(name, other, "map[string][]string")),
        }
    }

    /// A duration field as Consul's `CheckType.UnmarshalJSON` reads it: a Go duration
    /// string, or a JSON number of nanoseconds; any other type is silently ignored.
    pub(crate) fn duration(&self, name: &'static str) -> Result<Option<i64>, DecodeError> {
        match self.raw(name) {
            Some(Value::String(s)) => Ok(Some(duration::parse_nanos(s)?)),
            // Go converts float64 to time.Duration by truncation; `as` saturates instead
            // of wrapping on absurd values, which is the saner of the two.
            #[allow(clippy::cast_possible_truncation)]
            Some(Value::Number(n)) => Ok(n.as_f64().map(|f| f as i64)),
            _ => Ok(None),
        }
    }

    /// The type-mismatch error for `name`.
    pub(crate) fn mismatch(
        &self,
        name: &'static str,
        found: &Value,
        expected: &'static str,
    ) -> DecodeError {
        DecodeError::Type {
            found: kind(found),
            field: self.path(name),
            expected,
        }
    }
}

/// Go's name for the kind of a JSON value in unmarshal errors.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "bool".to_owned(),
        Value::Number(_) => "number".to_owned(),
        Value::String(_) => "string".to_owned(),
        Value::Array(_) => "array".to_owned(),
        Value::Object(_) => "object".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn empty_and_blank_bodies_are_eof() {
        assert_eq!(parse_body(b""), Err(DecodeError::Eof));
        assert_eq!(parse_body(b" \n"), Err(DecodeError::Eof));
        assert_eq!(DecodeError::Eof.to_string(), "EOF");
    }

    #[test]
    fn trailing_data_after_the_first_value_is_ignored_like_go() {
        assert_eq!(parse_body(br#"{"a":1} trailing"#).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn keys_match_case_insensitively_and_unknown_keys_fail() {
        let value = json!({"name": "x", "PORT": 1});
        let fields = Fields::new(&value, "T", None, &["Name", "Port"])
            .unwrap()
            .unwrap();
        assert_eq!(fields.string("Name").unwrap(), "x");
        assert_eq!(fields.int("Port").unwrap(), 1);

        let value = json!({"ID": "x"});
        let err = Fields::new(&value, "T", None, &["CheckID"]).unwrap_err();
        assert_eq!(err.to_string(), r#"json: unknown field "ID""#);
    }

    #[test]
    fn type_mismatches_read_like_go() {
        let value = json!({"Port": "80", "Weight": 1.5});
        let fields = Fields::new(&value, "ServiceDefinition", None, &["Port", "Weight"])
            .unwrap()
            .unwrap();
        assert_eq!(
            fields.int("Port").unwrap_err().to_string(),
            "json: cannot unmarshal string into Go struct field ServiceDefinition.Port of type int"
        );
        assert_eq!(
            fields.int("Weight").unwrap_err().to_string(),
            "json: cannot unmarshal number 1.5 into Go struct field ServiceDefinition.Weight of type int"
        );
    }

    #[test]
    fn durations_accept_strings_and_nanosecond_numbers() {
        let value = json!({"A": "10s", "B": 10, "C": true, "D": ""});
        let fields = Fields::new(&value, "T", None, &["A", "B", "C", "D"])
            .unwrap()
            .unwrap();
        assert_eq!(fields.duration("A").unwrap(), Some(10_000_000_000));
        assert_eq!(fields.duration("B").unwrap(), Some(10));
        assert_eq!(fields.duration("C").unwrap(), None);
        assert_eq!(
            fields.duration("D").unwrap_err().to_string(),
            r#"time: invalid duration """#
        );
    }
}
