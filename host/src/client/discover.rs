//! `rpcnode discover URL`: the node's methods from `rpc.discover`, as a table
//! or as the OpenRPC document.

use clap::Args;
use serde_json::{Value, json};

use super::connection::{Connection, Target};
use super::{Failure, pretty};

/// The widest summary column before it is cut.
const SUMMARY_WIDTH: usize = 60;

/// List the node's methods (from its OpenRPC document, `rpc.discover`).
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    #[command(flatten)]
    target: Target,
    /// Print the OpenRPC document instead of a table.
    #[arg(long)]
    json: bool,
}

/// Run `rpcnode discover`.
pub async fn run(args: DiscoverArgs) -> Result<(), Failure> {
    let mut connection = Connection::open(&args.target, None).await?;
    let request = json!({"jsonrpc": "2.0", "method": "rpc.discover", "id": 1});
    let answer = tokio::time::timeout(args.target.timeout()?, connection.exchange(&request, true))
        .await
        .map_err(|_| Failure::transport(format!("no answer within {} s", args.target.timeout)))??
        .unwrap_or_default();
    connection.close().await;
    if let Some(error) = answer.get("error") {
        return Err(Failure::Rpc(error.clone()));
    }
    let document = &answer["result"];
    let Some(methods) = document["methods"].as_array() else {
        return Err(Failure::transport(format!(
            "the answer to rpc.discover is not an OpenRPC document: {answer}"
        )));
    };
    if args.json {
        println!("{}", pretty(document));
    } else {
        print!("{}", table(methods));
    }
    Ok(())
}

/// One line per method: name, params, kind (call or notification), summary.
fn table(methods: &[Value]) -> String {
    let mut rows = vec![[
        "METHOD".to_owned(),
        "PARAMS".to_owned(),
        "KIND".to_owned(),
        "SUMMARY".to_owned(),
    ]];
    for method in methods {
        let params: Vec<String> = method["params"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|param| {
                let name = param["name"].as_str().unwrap_or("?");
                let kind = param["schema"]["type"]
                    .as_str()
                    .map(|kind| format!(": {kind}"));
                let optional = if param["required"] == true { "" } else { "?" };
                format!("{name}{optional}{}", kind.unwrap_or_default())
            })
            .collect();
        let kind = if method.get("result").is_some() {
            "call"
        } else {
            "notification"
        };
        let summary = method["summary"].as_str().unwrap_or_default();
        let summary = match summary.char_indices().nth(SUMMARY_WIDTH) {
            Some((cut, _)) => format!("{}…", &summary[..cut]),
            None => summary.to_owned(),
        };
        rows.push([
            method["name"].as_str().unwrap_or("?").to_owned(),
            params.join(", "),
            kind.to_owned(),
            summary,
        ]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        for (cell, width) in row.iter().zip(&widths) {
            out.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(&row[3]);
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_of_methods() {
        let methods = [
            json!({"name": "add", "summary": "Add two numbers.", "result": {},
                   "params": [{"name": "a", "required": true, "schema": {"type": "number"}},
                              {"name": "b", "schema": {}}]}),
            json!({"name": "log_event", "params": []}),
        ];
        assert_eq!(
            table(&methods),
            "METHOD     PARAMS         KIND          SUMMARY\n\
             add        a: number, b?  call          Add two numbers.\n\
             log_event                 notification\n"
        );
    }
}
