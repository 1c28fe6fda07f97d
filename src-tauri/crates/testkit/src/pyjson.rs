//! JSON as Python's `json.dumps` writes it (what aiohttp sends): `", "` and `": "` separators, ASCII-only output,
//! Python float reprs, and objects that keep their key order the way a Python `dict` does.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// Serializes `value` exactly as Python's `json.dumps(value)` would.
pub(crate) fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter);
    if value.serialize(&mut ser).is_err() {
        // Only non-string map keys fail here, and no type in this crate has them.
        return "null".to_string();
    }
    // The formatter writes ASCII only.
    String::from_utf8(out).unwrap_or_default()
}

/// A `serde_json` formatter with Python's separators, `ensure_ascii` escapes and float reprs.
struct PyFormatter;

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json already escaped quotes, backslashes and control characters; Python also escapes DEL and
        // everything outside ASCII, as UTF-16 code units.
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() && c != '\x7f' {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        w.write_all(float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        value: f32,
    ) -> std::io::Result<()> {
        w.write_all(float_repr(f64::from(value)).as_bytes())
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the decimal exponent is in
/// -4..16 (always with a fractional part), otherwise as `1.5e+16` / `1e-05`.
pub(crate) fn float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "-1.25e-7" or "8e0".
    let sci = format!("{value:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let body = if (-4..16).contains(&exponent) {
        if exponent >= 0 {
            let int_len = exponent as usize + 1;
            if digits.len() <= int_len {
                format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
        }
    } else {
        let mantissa = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{exp_sign}{:02}", exponent.abs())
    };
    format!("{sign}{body}")
}

/// A JSON value whose objects keep insertion order (a repeated key keeps its first position and takes the last
/// value, as `json.loads` does), so what a client sent comes back in the order it sent it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum OrderedJson {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<OrderedJson>),
    Object(Vec<(String, OrderedJson)>),
}

impl OrderedJson {
    pub(crate) fn parse(text: &[u8]) -> Result<OrderedJson, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// `value[key]` for an object.
    pub(crate) fn get(&self, key: &str) -> Option<&OrderedJson> {
        match self {
            OrderedJson::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut OrderedJson> {
        match self {
            OrderedJson::Object(entries) => {
                entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// `dict[key] = value`: replaces in place, or appends.
    pub(crate) fn insert(entries: &mut Vec<(String, OrderedJson)>, key: &str, value: OrderedJson) {
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => entries.push((key.to_string(), value)),
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            OrderedJson::String(s) => Some(s),
            _ => None,
        }
    }

    /// Python truthiness (`if value:`).
    pub(crate) fn truthy(&self) -> bool {
        match self {
            OrderedJson::Null => false,
            OrderedJson::Bool(b) => *b,
            OrderedJson::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            OrderedJson::String(s) => !s.is_empty(),
            OrderedJson::Array(items) => !items.is_empty(),
            OrderedJson::Object(entries) => !entries.is_empty(),
        }
    }

    /// Python's `key in value` for what `json.loads` can return; `None` where Python raises `TypeError`.
    pub(crate) fn py_contains(&self, key: &str) -> Option<bool> {
        match self {
            OrderedJson::Object(entries) => Some(entries.iter().any(|(k, _)| k == key)),
            OrderedJson::Array(items) => Some(items.iter().any(|item| item.as_str() == Some(key))),
            OrderedJson::String(s) => Some(s.contains(key)),
            _ => None,
        }
    }

    /// Python's `str(value)` for a scalar (what `str(json_data.get("prompt_id"))` gives).
    pub(crate) fn py_str(&self) -> String {
        match self {
            OrderedJson::Null => "None".to_string(),
            OrderedJson::Bool(true) => "True".to_string(),
            OrderedJson::Bool(false) => "False".to_string(),
            OrderedJson::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() => float_repr(f),
                _ => n.to_string(),
            },
            OrderedJson::String(s) => s.clone(),
            other => to_string(other),
        }
    }
}

impl From<&str> for OrderedJson {
    fn from(value: &str) -> Self {
        OrderedJson::String(value.to_string())
    }
}

impl From<String> for OrderedJson {
    fn from(value: String) -> Self {
        OrderedJson::String(value)
    }
}

impl From<u64> for OrderedJson {
    fn from(value: u64) -> Self {
        OrderedJson::Number(value.into())
    }
}

impl From<bool> for OrderedJson {
    fn from(value: bool) -> Self {
        OrderedJson::Bool(value)
    }
}

impl From<f64> for OrderedJson {
    /// A float (written with Python's repr, `1.0`); not finite becomes `null`.
    fn from(value: f64) -> Self {
        serde_json::Number::from_f64(value).map_or(OrderedJson::Null, OrderedJson::Number)
    }
}

impl<T: Into<OrderedJson>> From<Option<T>> for OrderedJson {
    fn from(value: Option<T>) -> Self {
        value.map_or(OrderedJson::Null, Into::into)
    }
}

impl From<Vec<OrderedJson>> for OrderedJson {
    fn from(items: Vec<OrderedJson>) -> Self {
        OrderedJson::Array(items)
    }
}

/// An object with these entries, in this order.
pub(crate) fn object(entries: Vec<(&str, OrderedJson)>) -> OrderedJson {
    OrderedJson::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

impl Serialize for OrderedJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            OrderedJson::Null => serializer.serialize_unit(),
            OrderedJson::Bool(b) => serializer.serialize_bool(*b),
            OrderedJson::Number(n) => n.serialize(serializer),
            OrderedJson::String(s) => serializer.serialize_str(s),
            OrderedJson::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            OrderedJson::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for OrderedJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OrderedJsonVisitor)
    }
}

struct OrderedJsonVisitor;

impl<'de> Visitor<'de> for OrderedJsonVisitor {
    type Value = OrderedJson;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OrderedJson, E> {
        serde_json::Number::from_f64(v)
            .map(OrderedJson::Number)
            .ok_or_else(|| E::custom("not a finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OrderedJson, E> {
        Ok(OrderedJson::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<OrderedJson, E> {
        Ok(OrderedJson::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<OrderedJson, E> {
        Ok(OrderedJson::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OrderedJson, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(OrderedJson::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedJson, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, OrderedJson>()? {
            OrderedJson::insert(&mut entries, &key, value);
        }
        Ok(OrderedJson::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyjson_float_repr_matches_python() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (10.0, "10.0"),
            (0.01, "0.01"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456.789, "123456.789"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (-2.5, "-2.5"),
            (1e300, "1e+300"),
        ];
        for (value, expected) in cases {
            assert_eq!(float_repr(value), expected, "repr({value:e})");
        }
    }

    #[test]
    fn pyjson_writes_python_separators_and_ascii_escapes() {
        let value = OrderedJson::parse(
            r#"{"b":[1,2.0,"\u00e9\ud83d\ude00\u007f"],"a":{"x":null,"y":true}}"#.as_bytes(),
        )
        .expect("valid JSON");
        assert_eq!(
            to_string(&value),
            r#"{"b": [1, 2.0, "\u00e9\ud83d\ude00\u007f"], "a": {"x": null, "y": true}}"#
        );
    }

    #[test]
    fn pyjson_repeated_key_keeps_first_position_and_last_value() {
        let value = OrderedJson::parse(br#"{"a":1,"b":2,"a":3}"#).expect("valid JSON");
        assert_eq!(to_string(&value), r#"{"a": 3, "b": 2}"#);
    }

    #[test]
    fn pyjson_python_semantics_of_in_truthiness_and_str() {
        let obj = OrderedJson::parse(br#"{"clear":0,"delete":["x"]}"#).expect("valid JSON");
        assert_eq!(obj.py_contains("clear"), Some(true));
        assert!(!obj.get("clear").expect("present").truthy());
        assert_eq!(
            OrderedJson::parse(b"5")
                .expect("valid")
                .py_contains("clear"),
            None
        );
        assert_eq!(OrderedJson::parse(b"5").expect("valid").py_str(), "5");
        assert_eq!(OrderedJson::parse(b"5.0").expect("valid").py_str(), "5.0");
        assert_eq!(OrderedJson::Null.py_str(), "None");
    }
}
