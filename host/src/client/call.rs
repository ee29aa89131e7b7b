//! `rpcnode call URL METHOD [PARAMS...]`: one request (or a notification,
//! or a batch), its result on stdout, an error on stderr.

use std::io::Read as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::{Map, Value, json};

use super::connection::{Connection, Target};
use super::{Failure, pretty};

/// Call a method and print its result as JSON (errors go to stderr: exit code
/// 1 for a JSON-RPC error, 2 for a usage error, 3 for a connection error).
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  rpcnode call http://127.0.0.1:8000/ add a=2 b=3
  rpcnode call http://127.0.0.1:8000/ add '{\"a\": 2, \"b\": 3}'
  rpcnode call ws://127.0.0.1:8000/ws add '[2, 3]'
  rpcnode call http://127.0.0.1:8000/ create_user @user.json
  echo '{\"a\": 2, \"b\": 3}' | rpcnode call http://127.0.0.1:8000/ add -
  rpcnode call http://127.0.0.1:8000/ --batch requests.json")]
pub struct CallArgs {
    #[command(flatten)]
    target: Target,
    /// The method to call (not with --batch).
    #[arg(required_unless_present = "batch", conflicts_with = "batch")]
    method: Option<String>,
    /// The params: one JSON value, `key=value` pairs (a value is JSON when it parses as JSON,
    /// else a string), `@FILE` (JSON from a file) or `-` (JSON from stdin); none sends no params.
    params: Vec<String>,
    /// Send a notification: no id, and the node sends no answer.
    #[arg(long)]
    notify: bool,
    /// Send the JSON array of requests in FILE (`-`: stdin) as one batch and print the answers;
    /// `jsonrpc` is added where missing, and an item without `id` is a notification.
    #[arg(long, value_name = "FILE")]
    batch: Option<PathBuf>,
    /// Print compact JSON on one line instead of indented JSON.
    #[arg(long)]
    raw: bool,
}

/// Run `rpcnode call`.
pub async fn run(args: CallArgs) -> Result<(), Failure> {
    let (message, expect_answer) = match (&args.batch, &args.method) {
        (Some(file), _) => {
            let batch = batch(read_json(&file.to_string_lossy())?)?;
            let expect_answer = batch.iter().any(|item| item.get("id").is_some());
            (Value::Array(batch), expect_answer)
        }
        (None, Some(method)) => {
            let mut request = json!({"jsonrpc": "2.0", "method": method});
            if let Some(params) = params(&args.params)? {
                request["params"] = params;
            }
            if !args.notify {
                request["id"] = json!(1);
            }
            (request, !args.notify)
        }
        (None, None) => return Err(Failure::usage("a METHOD or --batch is needed".to_owned())),
    };
    let mut connection = Connection::open(&args.target, None).await?;
    let timeout = args.target.timeout()?;
    let answer = tokio::time::timeout(timeout, connection.exchange(&message, expect_answer))
        .await
        .map_err(|_| Failure::transport(format!("no answer within {} s", args.target.timeout)))??;
    connection.close().await;
    let print = |value: &Value| {
        if args.raw {
            println!("{value}");
        } else {
            println!("{}", pretty(value));
        }
    };
    match answer {
        None => Ok(()),
        Some(Value::Array(answers)) => {
            print(&Value::Array(answers.clone()));
            match answers.iter().find(|answer| answer.get("error").is_some()) {
                Some(failed) => Err(Failure::Rpc(failed["error"].clone())),
                None => Ok(()),
            }
        }
        Some(answer) => match (answer.get("result"), answer.get("error")) {
            (Some(result), None) => {
                print(result);
                Ok(())
            }
            (None, Some(error)) => Err(Failure::Rpc(error.clone())),
            _ => Err(Failure::transport(format!(
                "not a JSON-RPC answer: {answer}"
            ))),
        },
    }
}

/// The params of the command line, if any.
fn params(args: &[String]) -> Result<Option<Value>, Failure> {
    match args {
        [] => Ok(None),
        [one] if one == "-" || one.starts_with('@') => Ok(Some(read_json(one)?)),
        [one] if !one.contains('=') || one.starts_with(['{', '[']) => {
            match serde_json::from_str::<Value>(one) {
                Ok(value @ (Value::Object(_) | Value::Array(_))) => Ok(Some(value)),
                Ok(_) => Err(Failure::usage(format!(
                    "params must be an object or an array, not {one}; write key=value pairs or wrap it: '[{one}]'"
                ))),
                Err(error) => Err(Failure::usage(format!(
                    "params {one:?} are not JSON ({error}) nor key=value pairs"
                ))),
            }
        }
        pairs => {
            let mut object = Map::new();
            for pair in pairs {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(Failure::usage(format!(
                        "{pair:?} is not key=value: give either one JSON value or key=value pairs"
                    )));
                };
                let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
                object.insert(key.to_owned(), value);
            }
            Ok(Some(Value::Object(object)))
        }
    }
}

/// The requests of a `--batch` file, completed with `jsonrpc`.
fn batch(value: Value) -> Result<Vec<Value>, Failure> {
    let Value::Array(items) = value else {
        return Err(Failure::usage(
            "a --batch file holds a JSON array of requests".to_owned(),
        ));
    };
    if items.is_empty() {
        return Err(Failure::usage(
            "the --batch file holds an empty array".to_owned(),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, mut item)| match item.as_object_mut() {
            Some(request) if request.get("method").is_some_and(Value::is_string) => {
                request.entry("jsonrpc").or_insert_with(|| json!("2.0"));
                Ok(item)
            }
            _ => Err(Failure::usage(format!(
                "item {index} of the --batch file is not a request object with a \"method\" string"
            ))),
        })
        .collect()
}

/// The JSON of `source`: `-` for stdin, `@FILE` or `FILE` for a file.
fn read_json(source: &str) -> Result<Value, Failure> {
    let (text, name) = if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| Failure::usage(format!("reading stdin: {error}")))?;
        (text, "stdin".to_owned())
    } else {
        let path = source.strip_prefix('@').unwrap_or(source);
        let text = std::fs::read_to_string(path)
            .map_err(|error| Failure::usage(format!("reading {path}: {error}")))?;
        (text, path.to_owned())
    };
    serde_json::from_str(&text)
        .map_err(|error| Failure::usage(format!("{name} is not JSON: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn params_from_the_command_line() {
        assert_eq!(params(&[]).unwrap(), None);
        assert_eq!(params(&strings(&["[2, 3]"])).unwrap(), Some(json!([2, 3])));
        assert_eq!(
            params(&strings(&["{\"a\": \"x=y\"}"])).unwrap(),
            Some(json!({"a": "x=y"}))
        );
        assert_eq!(
            params(&strings(&[
                "a=2",
                "name=ada",
                "tags=[1]",
                "quoted=\"7\"",
                "empty="
            ]))
            .unwrap(),
            Some(json!({"a": 2, "name": "ada", "tags": [1], "quoted": "7", "empty": ""}))
        );
        for bad in [&["7"][..], &["nope"], &["a=1", "b"], &["{broken"]] {
            assert!(
                matches!(params(&strings(bad)), Err(Failure::Usage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn batches_are_completed_and_checked() {
        assert_eq!(
            batch(json!([{"method": "a", "id": 1}, {"method": "b"}])).unwrap(),
            [
                json!({"method": "a", "id": 1, "jsonrpc": "2.0"}),
                json!({"method": "b", "jsonrpc": "2.0"})
            ]
        );
        for bad in [json!({}), json!([]), json!([1]), json!([{"id": 1}])] {
            assert!(
                matches!(batch(bad.clone()), Err(Failure::Usage(_))),
                "{bad}"
            );
        }
    }
}
