//! The quick check for the common params schema: an object whose properties
//! each declare only a JSON type (`{"a": {"type": "number"}}`), with
//! `required` and `additionalProperties`. Such params are checked on their
//! text, without building a `serde_json::Value` for the full validator,
//! which costs more than a small handler. The quick check only ever says
//! "valid"; anything it is not sure of goes to the full validator, which also
//! words the problems.

use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Keywords that say nothing about validity. (`$schema` does: under draft 4
/// `-0` is no integer, so a schema naming its draft is not flat.)
const ANNOTATIONS: [&str; 8] = [
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// The most properties a flat schema has: their presence is a bit mask.
const MAX_PROPERTIES: usize = 64;

/// An object schema of typed properties, checked on the params' text.
#[derive(Debug)]
pub struct FlatSchema {
    /// Each property's name and the JSON types it takes.
    properties: Vec<(String, Kinds)>,
    /// Bit `i` is set when property `i` is required.
    required: u64,
    /// Whether properties the schema does not name are allowed.
    others_allowed: bool,
}

/// A set of JSON types, one bit each.
#[derive(Debug, Clone, Copy)]
struct Kinds(u8);

impl Kinds {
    const NULL: u8 = 1;
    const BOOLEAN: u8 = 2;
    const INTEGER: u8 = 4;
    const NUMBER: u8 = 8;
    const STRING: u8 = 16;

    /// The kinds a `type` keyword names; `None` for any other keyword value
    /// (such as `object`, whose members need the full validator).
    fn of(type_keyword: &Value) -> Option<Self> {
        let one = |name: &Value| match name.as_str()? {
            "null" => Some(Self::NULL),
            "boolean" => Some(Self::BOOLEAN),
            "integer" => Some(Self::INTEGER),
            "number" => Some(Self::NUMBER | Self::INTEGER),
            "string" => Some(Self::STRING),
            _ => None,
        };
        match type_keyword {
            Value::Array(names) => names
                .iter()
                .try_fold(0, |kinds, name| Some(kinds | one(name)?))
                .map(Self),
            name => one(name).map(Self),
        }
    }

    /// Whether `value` (JSON text as the message reader skimmed it) is
    /// surely of one of these kinds.
    fn admit(self, value: &RawValue) -> bool {
        let text = value.get();
        let kind = match text.as_bytes()[0] {
            b'n' => Self::NULL,
            b't' | b'f' => Self::BOOLEAN,
            b'"' if surely_readable(text) => Self::STRING,
            b'-' | b'0'..=b'9' => {
                // A number the full validator would not read (out of f64's
                // range: only an exponent or some 300 digits get there) is
                // left to it, as is an integer written as `1.0`.
                let plain = !text.contains(['e', 'E']) && text.len() < 300;
                if !plain && !text.parse::<f64>().is_ok_and(f64::is_finite) {
                    return false;
                }
                if text.contains(['.', 'e', 'E']) {
                    Self::NUMBER
                } else {
                    Self::INTEGER
                }
            }
            _ => return false,
        };
        self.0 & kind != 0
    }
}

impl FlatSchema {
    /// `schema` as a flat schema, if it is one.
    pub fn of(schema: &Value) -> Option<Self> {
        let schema = schema.as_object()?;
        let known = |key: &str| {
            ANNOTATIONS.contains(&key)
                || ["type", "properties", "required", "additionalProperties"].contains(&key)
        };
        if !schema.keys().all(|key| known(key)) || schema.get("type")? != "object" {
            return None;
        }
        let properties = schema.get("properties")?.as_object()?;
        if properties.len() > MAX_PROPERTIES {
            return None;
        }
        let properties = properties
            .iter()
            .map(|(name, property)| Some((name.clone(), typed_property(property.as_object()?)?)))
            .collect::<Option<Vec<_>>>()?;
        let required_names = match schema.get("required") {
            Some(names) => names.as_array()?.as_slice(),
            None => &[],
        };
        let mut required = 0;
        for name in required_names {
            let index = properties.iter().position(|(known, _)| name == known)?;
            required |= 1 << index;
        }
        let others_allowed = match schema.get("additionalProperties") {
            None | Some(Value::Bool(true)) => true,
            Some(Value::Bool(false)) => false,
            Some(_) => return None,
        };
        Some(Self {
            properties,
            required,
            others_allowed,
        })
    }

    /// Whether `params` (JSON text: an object, an array bound to the
    /// properties in order, or absent) surely satisfies the schema. `false`
    /// means "not sure": ask the full validator.
    pub fn accepts(&self, params: Option<&str>) -> bool {
        let present = match params {
            None => Some(0),
            Some(text) => {
                let mut reader = serde_json::Deserializer::from_str(text);
                let present = reader.deserialize_any(Presence(self)).ok();
                present.filter(|_| reader.end().is_ok())
            }
        };
        present.is_some_and(|present| present & self.required == self.required)
    }
}

/// Whether the full validator surely reads `value`, which the message
/// reader only skimmed: a scalar without `\u` escapes (a lone surrogate is
/// refused when read) and so without nesting (too deep is refused too).
fn surely_readable(text: &str) -> bool {
    !text.starts_with(['[', '{']) && !text.contains("\\u")
}

/// A property schema that only names types (and annotates).
fn typed_property(property: &Map<String, Value>) -> Option<Kinds> {
    let others_are_annotations = property
        .keys()
        .all(|key| key == "type" || ANNOTATIONS.contains(&key.as_str()));
    others_are_annotations
        .then(|| Kinds::of(property.get("type")?))
        .flatten()
}

/// Reads params, checking each against its property as it goes: the mask
/// of properties present, or an error when a value is not surely valid.
struct Presence<'s>(&'s FlatSchema);

/// The reason a quick check gives up (never shown: the full validator
/// words the problem).
#[derive(Debug)]
struct Unsure;

impl<'de> Visitor<'de> for Presence<'_> {
    type Value = u64;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("params as an object or an array")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<u64, A::Error> {
        let mut present = 0;
        // A key with escapes is not borrowed, and so not read here.
        while let Some(name) = members.next_key::<&str>()? {
            let value: &RawValue = members.next_value()?;
            match self
                .0
                .properties
                .iter()
                .position(|(known, _)| known == name)
            {
                Some(index) if self.0.properties[index].1.admit(value) => present |= 1 << index,
                None if self.0.others_allowed && surely_readable(value.get()) => {}
                _ => return Err(de::Error::custom(Unsure)),
            }
        }
        Ok(present)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut values: A) -> Result<u64, A::Error> {
        let mut present = 0;
        for (index, (_, kinds)) in self.0.properties.iter().enumerate() {
            let Some(value) = values.next_element::<&RawValue>()? else {
                return Ok(present);
            };
            if !kinds.admit(value) {
                return Err(de::Error::custom(Unsure));
            }
            present |= 1 << index;
        }
        // More positional params than properties.
        match values.next_element::<IgnoredAny>()? {
            Some(_) => Err(de::Error::custom(Unsure)),
            None => Ok(present),
        }
    }
}

impl fmt::Display for Unsure {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("not surely valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(schema: &str) -> Option<FlatSchema> {
        FlatSchema::of(&serde_json::from_str(schema).unwrap())
    }

    const ADD: &str = r#"{"type":"object","properties":{"a":{"type":"number"},
        "b":{"type":"integer","description":"whole"}},"required":["a"],
        "additionalProperties":false}"#;

    #[test]
    fn params_of_the_declared_types_are_accepted_on_their_text() {
        let add = flat(ADD).unwrap();
        for params in [
            r#"{"a":1,"b":2}"#,
            r#"{"b":-2,"a":1.5e3}"#,
            r#" { "a" : 0 } "#,
            "[1,2]",
            "[1.25]",
        ] {
            assert!(add.accepts(Some(params)), "{params}");
        }
    }

    #[test]
    fn anything_not_surely_valid_goes_to_the_full_validator() {
        let add = flat(ADD).unwrap();
        for params in [
            r#"{"a":"1"}"#,
            r#"{"b":2}"#,
            r#"{"a":1,"c":3}"#,
            r#"{"a":1,"b":2.0}"#,
            r#"{"a":1e400}"#,
            &format!(r#"{{"a":{}}}"#, "9".repeat(400)),
            r#"{"\u0061":1}"#,
            r#"{"a":1,"b":2,"c":"\ud800"}"#,
            "[1,2,3]",
            "[null]",
            "[]",
            "3",
            r#"{"a":1} x"#,
            r#"{"a":1"#,
        ] {
            assert!(!add.accepts(Some(params)), "{params}");
        }
        assert!(!add.accepts(None));
        let optional = flat(r#"{"type":"object","properties":{"a":{"type":["string","null"]}}}"#);
        let optional = optional.unwrap();
        assert!(optional.accepts(None));
        assert!(optional.accepts(Some(r#"{"a":null,"z":1,"y":"x"}"#)));
        assert!(!optional.accepts(Some(r#"{"a":true}"#)));
        // Skimmed, never read: a lone surrogate and deep nesting are left to
        // the full validator, which refuses them.
        assert!(!optional.accepts(Some(r#"{"a":"\ud800"}"#)));
        assert!(!optional.accepts(Some(r#"{"z":"\udc00"}"#)));
        assert!(!optional.accepts(Some(r#"{"z":{"any":[1]}}"#)));
    }

    #[test]
    fn only_schemas_of_typed_properties_are_flat() {
        for schema in [
            r#"{"type":"object","properties":{"a":{"type":"string","minLength":1}}}"#,
            r#"{"type":"object","properties":{"a":{"type":"object"}}}"#,
            r#"{"type":"object","properties":{"a":{}}}"#,
            r#"{"type":"object","properties":{"a":{"type":"number"}},"required":["b"]}"#,
            r#"{"type":"object","properties":{},"additionalProperties":{"type":"number"}}"#,
            r#"{"type":"object","properties":{},"minProperties":1}"#,
            r#"{"$schema":"http://json-schema.org/draft-04/schema#","type":"object","properties":{}}"#,
            r#"{"type":"array"}"#,
            r#"{"properties":{}}"#,
            "true",
        ] {
            assert!(flat(schema).is_none(), "{schema}");
        }
    }
}
