//! The params a method declares: its JSON Schema, compiled once when the
//! plugin loads, and the names of its properties in order, which is also
//! the order positional params bind to. The host checks params against it
//! before any hook or handler runs.

use jsonschema::Validator;
use serde_json::{Map, Value};

use super::flat_schema::FlatSchema;

/// One thing wrong with the params.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    /// Where, as a JSON pointer into the params as the client sent them
    /// (`/a`, or `/0` for positional params); empty for the params as a whole.
    pub path: String,
    /// What.
    pub message: String,
}

/// A method's params schema, ready to check params against.
pub struct ParamsSchema {
    validator: Validator,
    /// The properties of an object schema, in order; `None` for a schema
    /// without `properties`, which positional params do not bind to.
    names: Option<Vec<String>>,
    /// The quick check, for a schema of typed properties.
    flat: Option<FlatSchema>,
}

impl ParamsSchema {
    /// Compile `schema` (JSON text); the error says why it does not compile.
    pub fn compile(schema: &str) -> Result<Self, String> {
        let schema: Value = serde_json::from_str(schema).map_err(|error| error.to_string())?;
        let validator = jsonschema::validator_for(&schema).map_err(|error| error.to_string())?;
        let names = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| properties.keys().cloned().collect());
        let flat = FlatSchema::of(&schema);
        Ok(Self {
            validator,
            names,
            flat,
        })
    }

    /// The names positional params bind to, in order.
    pub fn names(&self) -> &[String] {
        self.names.as_deref().unwrap_or_default()
    }

    /// Check `params` (JSON text: an object, an array, or absent); every
    /// problem, in the order the schema finds them.
    pub fn check(&self, params: Option<&str>) -> Result<(), Vec<Problem>> {
        if self.flat.as_ref().is_some_and(|flat| flat.accepts(params)) {
            return Ok(());
        }
        let params: Value = match params {
            Some(text) => serde_json::from_str(text).map_err(|error| {
                vec![Problem {
                    path: String::new(),
                    message: error.to_string(),
                }]
            })?,
            None => Value::Object(Map::new()),
        };
        // An object schema binds positional params to its properties; any
        // other schema is checked against the params as sent.
        let (instance, positional) = match params {
            Value::Array(values) if self.names.is_some() => (self.by_name(values)?, true),
            other => (other, false),
        };
        if self.validator.is_valid(&instance) {
            return Ok(());
        }
        let problems = self
            .validator
            .iter_errors(&instance)
            .map(|error| Problem {
                path: self.client_path(error.instance_path().as_str(), positional),
                message: error.to_string(),
            })
            .collect();
        Err(problems)
    }

    /// Positional params as the object they stand for.
    fn by_name(&self, values: Vec<Value>) -> Result<Value, Vec<Problem>> {
        let names = self.names();
        if values.len() > names.len() {
            return Err(vec![Problem {
                path: String::new(),
                message: format!(
                    "{} positional params given, the method takes at most {}",
                    values.len(),
                    names.len()
                ),
            }]);
        }
        let object = names.iter().cloned().zip(values).collect();
        Ok(Value::Object(object))
    }

    /// `path` (into the object checked) as a path into what the client sent:
    /// for positional params, the property becomes its index.
    fn client_path(&self, path: &str, positional: bool) -> String {
        if !positional {
            return path.to_owned();
        }
        let rest = path.strip_prefix('/').unwrap_or(path);
        let (first, tail) = rest
            .split_once('/')
            .map_or((rest, ""), |(first, tail)| (first, tail));
        let first = first.replace("~1", "/").replace("~0", "~");
        match self.names().iter().position(|name| *name == first) {
            Some(index) if tail.is_empty() => format!("/{index}"),
            Some(index) => format!("/{index}/{tail}"),
            None => path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADD: &str = r#"{"type":"object","properties":{"b":{"type":"number"},"a":{"type":"number"}},
        "required":["b","a"],"additionalProperties":false}"#;

    fn problem(path: &str, message: &str) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }

    #[test]
    fn params_are_checked_by_name_and_by_position_in_property_order() {
        let schema = ParamsSchema::compile(ADD).unwrap();
        assert_eq!(schema.names(), ["b", "a"]);
        assert_eq!(schema.check(Some(r#"{"a":1,"b":2}"#)), Ok(()));
        assert_eq!(schema.check(Some("[1,2]")), Ok(()));
        assert_eq!(
            schema.check(Some(r#"{"a":"x","b":2}"#)),
            Err(vec![problem("/a", r#""x" is not of type "number""#)])
        );
        assert_eq!(
            schema.check(Some(r#"[2,"x"]"#)),
            Err(vec![problem("/1", r#""x" is not of type "number""#)])
        );
        assert_eq!(
            schema.check(Some("[1]")),
            Err(vec![problem("", r#""a" is a required property"#)])
        );
        assert_eq!(
            schema.check(Some("[1,2,3]")),
            Err(vec![problem(
                "",
                "3 positional params given, the method takes at most 2"
            )])
        );
        assert_eq!(
            schema.check(None),
            Err(vec![
                problem("", r#""b" is a required property"#),
                problem("", r#""a" is a required property"#)
            ])
        );
    }

    #[test]
    fn a_schema_without_properties_checks_the_params_as_sent() {
        let schema =
            ParamsSchema::compile(r#"{"type":"array","items":{"type":"number"},"maxItems":2}"#)
                .unwrap();
        assert_eq!(schema.check(Some("[1,2]")), Ok(()));
        assert_eq!(
            schema.check(Some("[1,2,3]")),
            Err(vec![problem("", "[1,2,3] has more than 2 items")])
        );
    }

    #[test]
    fn a_method_without_params_takes_none_an_empty_list_or_an_empty_object() {
        let schema = ParamsSchema::compile(r#"{"type":"object","properties":{}}"#).unwrap();
        for params in [None, Some("[]"), Some("{}")] {
            assert_eq!(schema.check(params), Ok(()), "{params:?}");
        }
        assert_eq!(
            schema.check(Some("[1]")),
            Err(vec![problem(
                "",
                "1 positional params given, the method takes at most 0"
            )])
        );
    }

    #[test]
    fn the_quick_check_agrees_with_the_full_validator() {
        let schemas = [
            ADD,
            r#"{"type":"object","properties":{"n":{"type":"integer"},"s":{"type":["string","null"]},
                "t":{"type":"boolean","description":"flag"}},"required":["n"]}"#,
        ];
        let deep = format!(r#"{{"n":1,"z":{}{}}}"#, "[".repeat(130), "]".repeat(130));
        let params = [
            None,
            Some(r#"{"a":1,"b":2}"#),
            Some("[1,2]"),
            Some(r#"{"a":1,"b":2,"c":3}"#),
            Some(r#"{"n":1,"s":null,"t":true,"extra":[{}]}"#),
            Some(r#"{"n":1.0}"#),
            Some(r#"{"n":1.5}"#),
            Some(r#"{"n":-7,"s":"x","t":"yes"}"#),
            Some(r#"[3,"x",false]"#),
            Some(r#"[3,"x",false,1]"#),
            Some(r#"{"n":1,"n":"x"}"#),
            Some(r#"{"a":1e400,"b":2}"#),
            Some(r#"{"n":1,"s":"\ud800"}"#),
            Some(r#"{"n":1,"z":"\udc00"}"#),
            Some(&deep),
            Some("[]"),
        ];
        for schema in schemas {
            let quick = ParamsSchema::compile(schema).unwrap();
            assert!(quick.flat.is_some(), "{schema}");
            let full = ParamsSchema {
                flat: None,
                ..ParamsSchema::compile(schema).unwrap()
            };
            for params in params {
                assert_eq!(
                    quick.check(params),
                    full.check(params),
                    "{schema} {params:?}"
                );
            }
        }
    }

    #[test]
    fn a_schema_that_does_not_compile_says_why() {
        let error = ParamsSchema::compile(r#"{"type":"objekt"}"#).err().unwrap();
        assert!(error.contains("objekt"), "{error}");
    }
}
