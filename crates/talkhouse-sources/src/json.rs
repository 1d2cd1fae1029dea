//! JSON documents as the connectors read them: [`Json`], a tree that borrows its strings from
//! the text it was parsed from, and [`Doc`], what a record's mapping to rows asks of a document,
//! for both it and `serde_json::Value`.
//!
//! A bulk load reads millions of export lines, and building a `serde_json::Value` for each one
//! allocates every key and every string and a hash table per object, only to copy a few of them
//! into cells and drop the rest. [`Json`] is read through serde_json too, so it accepts exactly the
//! text `Value` accepts (the same grammar, numbers and nesting limit), but a string without
//! escapes points into the line and an object is the list of its entries. Where a key repeats,
//! the last value counts, as in `Value`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A JSON value whose strings borrow from the text it was parsed from, where they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as serde_json reads it.
    Number(Number),
    /// A string: borrowed unless it held escapes.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object: its entries in the order of the text, a repeated key included.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl Json<'_> {
    /// As a `serde_json::Value` (a repeated key keeps its first place and its last value, as
    /// serde_json's own parse gives it).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::String(s) => Value::String(s.as_ref().to_owned()),
            Json::Array(a) => Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Object(entries) => {
                let mut map = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    map.insert(k.as_ref().to_owned(), v.to_value());
                }
                Value::Object(map)
            }
        }
    }
}

/// What mapping a record to rows asks of a JSON document: implemented by [`Json`] (export
/// lines) and `serde_json::Value` (everything else), so that one mapping serves both.
pub trait Doc: Sized {
    /// The value of `key`, when this is an object that has it (the last one, if it repeats).
    fn field(&self, key: &str) -> Option<&Self>;
    /// The text, when this is a string.
    fn text(&self) -> Option<&str>;
    /// The number, when this is one.
    fn number(&self) -> Option<&Number>;
    /// The boolean, when this is one.
    fn boolean(&self) -> Option<bool>;
    /// The elements, when this is an array.
    fn elements(&self) -> Option<&[Self]>;
    /// Whether this is an object.
    fn is_object(&self) -> bool;
    /// As an owned `serde_json::Value`.
    fn to_value(&self) -> Value;
}

impl Doc for Json<'_> {
    fn field(&self, key: &str) -> Option<&Self> {
        match self {
            Json::Object(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|e| &e.1),
            _ => None,
        }
    }
    fn text(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
    fn number(&self) -> Option<&Number> {
        match self {
            Json::Number(n) => Some(n),
            _ => None,
        }
    }
    fn boolean(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
    fn elements(&self) -> Option<&[Self]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }
    fn is_object(&self) -> bool {
        matches!(self, Json::Object(_))
    }
    fn to_value(&self) -> Value {
        Json::to_value(self)
    }
}

impl Doc for Value {
    fn field(&self, key: &str) -> Option<&Self> {
        self.get(key)
    }
    fn text(&self) -> Option<&str> {
        self.as_str()
    }
    fn number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
    fn boolean(&self) -> Option<bool> {
        self.as_bool()
    }
    fn elements(&self) -> Option<&[Self]> {
        self.as_array().map(Vec::as_slice)
    }
    fn is_object(&self) -> bool {
        Value::is_object(self)
    }
    fn to_value(&self) -> Value {
        self.clone()
    }
}

/// Text borrowed from the input where serde hands it over borrowed (object keys).
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        // As serde_json's own `Value` does: a float JSON cannot hold becomes null.
        Ok(Number::from_f64(n).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(s)))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Json::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(Text(k)) = map.next_key()? {
            out.push((k, map.next_value()?));
        }
        Ok(Json::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents that exercise what could set the two parses apart.
    const SAMPLES: &[&str] = &[
        r#"{"a":1,"b":-2,"c":1.5,"d":1e300,"e":18446744073709551615,"f":-9223372036854775808}"#,
        r#"{"s":"plain","t":"esc\"aped\u00e9\n","u":"","k\"ey":true,"n":null}"#,
        r#"{"dup":1,"x":[1,{"y":2}],"dup":{"z":[]},"dup":"last"}"#,
        r#"  [1, "two", {"three": 3.0}, [], {}]  "#,
        r#""just a string""#,
        "12345678901234567890123",
        "-0.0",
    ];

    #[test]
    fn reads_what_serde_json_reads_and_gives_the_same_value() {
        for text in SAMPLES {
            let want: Value = serde_json::from_str(text).expect("valid");
            let got = serde_json::from_str::<Json>(text).expect("valid");
            assert_eq!(got.to_value(), want, "{text}");
            assert_eq!(got.to_value().to_string(), want.to_string(), "{text}");
        }
    }

    #[test]
    fn rejects_what_serde_json_rejects_with_the_same_error() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let deep_in_object = format!(r#"{{"ignored":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        for text in [
            "{\"a\":",
            "{\"a\":1} trailing",
            "{\"a\":1e400}",
            "[1,]",
            "{'a':1}",
            "",
            deep.as_str(),
            deep_in_object.as_str(),
        ] {
            let want = serde_json::from_str::<Value>(text).expect_err(text);
            let got = serde_json::from_str::<Json>(text).expect_err(text);
            assert_eq!(got.to_string(), want.to_string(), "{text}");
        }
    }

    #[test]
    fn strings_without_escapes_borrow_the_text() {
        let text = r#"{"id":"abc","body":"a\nb"}"#;
        let doc = serde_json::from_str::<Json>(text).expect("valid");
        assert!(matches!(
            doc.field("id"),
            Some(Json::String(Cow::Borrowed("abc")))
        ));
        assert!(matches!(
            doc.field("body"),
            Some(Json::String(Cow::Owned(_)))
        ));
        assert_eq!(doc.field("body").and_then(Doc::text), Some("a\nb"));
    }

    #[test]
    fn a_repeated_key_reads_as_its_last_value_in_both() {
        let text = r#"{"k":1,"other":true,"k":"two"}"#;
        let doc = serde_json::from_str::<Json>(text).expect("valid");
        let value: Value = serde_json::from_str(text).expect("valid");
        assert_eq!(doc.field("k").and_then(Doc::text), Some("two"));
        assert_eq!(Doc::field(&value, "k").and_then(Doc::text), Some("two"));
        assert_eq!(doc.field("missing"), None);
        assert_eq!(Json::Null.field("k"), None);
    }
}
