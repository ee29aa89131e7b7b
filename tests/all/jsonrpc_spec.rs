//! Every JSON-RPC 2.0 rule, checked with exact JSON over both transports:
//! the same cases run over HTTP and over WebSocket.

use serde_json::{Value, json};

use crate::support::{TestNode, error, success};

/// One request text and the exact answer it must get (`None`: no answer).
struct Case {
    name: &'static str,
    send: String,
    answer: Option<Value>,
}

fn case(name: &'static str, send: impl Into<String>, answer: Option<Value>) -> Case {
    Case {
        name,
        send: send.into(),
        answer,
    }
}

fn cases() -> Vec<Case> {
    let add = |id: &str| format!(r#"{{"jsonrpc":"2.0","method":"add","params":[1,2],"id":{id}}}"#);
    vec![
        case(
            "named params",
            r#"{"jsonrpc":"2.0","method":"add","params":{"a":1,"b":2},"id":1}"#,
            Some(success(json!({"sum": 3}), json!(1))),
        ),
        case(
            "positional params and a string id",
            r#"{"jsonrpc":"2.0","method":"multiply","params":[6,7],"id":"abc"}"#,
            Some(success(json!({"product": 42}), json!("abc"))),
        ),
        case(
            "null id is echoed",
            add("null"),
            Some(success(json!({"sum": 3}), Value::Null)),
        ),
        case(
            "fractional id is echoed",
            add("2.5"),
            Some(success(json!({"sum": 3}), json!(2.5))),
        ),
        case(
            "negative id is echoed",
            add("-7"),
            Some(success(json!({"sum": 3}), json!(-7))),
        ),
        case(
            "fractional results",
            r#"{"jsonrpc":"2.0","method":"divide","params":{"a":1,"b":4},"id":3}"#,
            Some(success(json!({"quotient": 0.25}), json!(3))),
        ),
        case(
            "a notification gets no answer",
            r#"{"jsonrpc":"2.0","method":"add","params":[1,2]}"#,
            None,
        ),
        case(
            "handler invalid params",
            r#"{"jsonrpc":"2.0","method":"divide","params":[1,0],"id":4}"#,
            Some(error(
                -32602,
                "Invalid params: Cannot divide by zero",
                json!(4),
            )),
        ),
        case(
            "missing params are invalid params",
            r#"{"jsonrpc":"2.0","method":"user_get","id":5}"#,
            Some(json!({"jsonrpc": "2.0", "id": 5, "error": {"code": -32602,
                "message": r#"Invalid params: "user_id" is a required property"#,
                "data": [{"path": "", "message": r#""user_id" is a required property"#}]}})),
        ),
        case(
            "mistyped params are invalid params",
            r#"{"jsonrpc":"2.0","method":"add","params":["x",1],"id":6}"#,
            Some(json!({"jsonrpc": "2.0", "id": 6, "error": {"code": -32602,
                "message": r#"Invalid params: /0: "x" is not of type "number""#,
                "data": [{"path": "/0", "message": r#""x" is not of type "number""#}]}})),
        ),
        case(
            "scalar params are an invalid request",
            r#"{"jsonrpc":"2.0","method":"add","params":"1,2","id":7}"#,
            Some(error(
                -32600,
                "Invalid Request: params must be an object or an array",
                json!(7),
            )),
        ),
        case(
            "unknown method",
            r#"{"jsonrpc":"2.0","method":"nope","id":8}"#,
            Some(error(-32601, "Method not found: nope", json!(8))),
        ),
        case(
            "rpc. names are reserved",
            r#"{"jsonrpc":"2.0","method":"rpc.add","id":9}"#,
            Some(error(-32601, "Method not found: rpc.add", json!(9))),
        ),
        case(
            "wrong jsonrpc version",
            r#"{"jsonrpc":"1.0","method":"add","params":[1,2],"id":10}"#,
            Some(error(
                -32600,
                r#"Invalid Request: jsonrpc must be exactly "2.0""#,
                json!(10),
            )),
        ),
        case(
            "method must be a string",
            r#"{"jsonrpc":"2.0","method":1,"id":11}"#,
            Some(error(
                -32600,
                "Invalid Request: method must be a string",
                json!(11),
            )),
        ),
        case(
            "an object id is unreadable",
            r#"{"jsonrpc":"2.0","method":"add","params":[1,2],"id":{"a":1}}"#,
            Some(error(
                -32600,
                "Invalid Request: id must be a string, a number or null",
                Value::Null,
            )),
        ),
        case(
            "not an object",
            "42",
            Some(error(
                -32600,
                "Invalid Request: a request must be a JSON object",
                Value::Null,
            )),
        ),
        case(
            "parse error",
            r#"{"jsonrpc":"2.0","method":"add","params":[1,2"#,
            Some(error(
                -32700,
                "Parse error: EOF while parsing a list at line 1 column 45",
                Value::Null,
            )),
        ),
        case(
            "empty batch",
            "[]",
            Some(error(-32600, "Invalid Request: empty batch", Value::Null)),
        ),
        case(
            "batch of non-objects",
            "[1,2,3]",
            Some(json!([
                error(
                    -32600,
                    "Invalid Request: a request must be a JSON object",
                    Value::Null
                ),
                error(
                    -32600,
                    "Invalid Request: a request must be a JSON object",
                    Value::Null
                ),
                error(
                    -32600,
                    "Invalid Request: a request must be a JSON object",
                    Value::Null
                ),
            ])),
        ),
        case(
            "batch that is not JSON",
            r#"[{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1},{"jsonrpc":"2.0","method""#,
            Some(error(
                -32700,
                "Parse error: EOF while parsing an object at line 1 column 81",
                Value::Null,
            )),
        ),
        case(
            "mixed batch keeps order and skips notifications",
            r#"[
                {"jsonrpc":"2.0","method":"add","params":[1,2],"id":"1"},
                {"jsonrpc":"2.0","method":"add","params":[7,7]},
                {"jsonrpc":"2.0","method":"divide","params":[1,0],"id":"2"},
                {"foo":"boo"},
                {"jsonrpc":"2.0","method":"nope","params":{"name":"myself"},"id":"5"},
                {"jsonrpc":"2.0","method":"multiply","params":{"a":3,"b":3},"id":"9"}
            ]"#,
            Some(json!([
                success(json!({"sum": 3}), json!("1")),
                error(-32602, "Invalid params: Cannot divide by zero", json!("2")),
                error(
                    -32600,
                    r#"Invalid Request: jsonrpc must be exactly "2.0""#,
                    Value::Null
                ),
                error(-32601, "Method not found: nope", json!("5")),
                success(json!({"product": 9}), json!("9")),
            ])),
        ),
        case(
            "all-notification batch gets no answer",
            r#"[{"jsonrpc":"2.0","method":"add","params":[1,2]},{"jsonrpc":"2.0","method":"multiply","params":[1,2]}]"#,
            None,
        ),
        case(
            "dotted method names reach underscored handlers",
            r#"{"jsonrpc":"2.0","method":"user.create","params":{"username":"Ann","email":"ann@example.com"},"id":1}"#,
            Some(success(json!({"user_id": 1, "username": "Ann"}), json!(1))),
        ),
        case(
            "hyphen and hash spellings too",
            r#"[
                {"jsonrpc":"2.0","method":"user-get","params":{"user_id":1},"id":2},
                {"jsonrpc":"2.0","method":"user#get","params":[1],"id":3},
                {"jsonrpc":"2.0","method":"user_get","params":[99],"id":4}
            ]"#,
            Some(json!([
                success(json!({"user_id": 1, "username": "Ann"}), json!(2)),
                success(json!({"user_id": 1, "username": "Ann"}), json!(3)),
                error(404, "User 99 not found", json!(4)),
            ])),
        ),
        case(
            "a notification-only method called with an id answers null",
            r#"{"jsonrpc":"2.0","method":"fire_and_forget","params":[],"id":12}"#,
            Some(success(Value::Null, json!(12))),
        ),
    ]
}

#[tokio::test]
async fn every_rule_over_http() {
    let node = TestNode::start(&["calculator", "users", "probe"]).await;
    for case in cases() {
        let (status, body) = node.post_text(&case.send).await;
        match case.answer {
            Some(expected) => {
                assert_eq!(status, 200, "{}: status", case.name);
                let answer: Value = serde_json::from_str(&body).expect("a JSON answer");
                assert_eq!(answer, expected, "{}", case.name);
            }
            None => assert_eq!((status, body.as_str()), (204, ""), "{}", case.name),
        }
    }
}

#[tokio::test]
async fn every_rule_over_websocket() {
    let node = TestNode::start(&["calculator", "users", "probe"]).await;
    let mut ws = node.ws().await;
    for case in cases() {
        ws.send_text(&case.send).await;
        match case.answer {
            Some(expected) => assert_eq!(ws.recv().await, expected, "{}", case.name),
            None => {
                // Nothing may arrive for a notification: the next frame must
                // be the answer to a marker request sent after it.
                let marker = json!({"jsonrpc":"2.0","method":"add","params":[0,0],"id":"marker"});
                ws.send(&marker).await;
                assert_eq!(
                    ws.recv().await,
                    success(json!({"sum": 0}), json!("marker")),
                    "{}",
                    case.name
                );
            }
        }
    }
    ws.close().await;
}
