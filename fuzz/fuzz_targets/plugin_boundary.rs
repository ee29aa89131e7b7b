//! The WIT boundary: the `fuzzer` fixture plugin runs the input as a program
//! of host calls with arbitrary arguments (notifications, subscriptions,
//! state, client metadata, background calls) ending in an arbitrary result,
//! error or trap. Whatever the plugin does, the host must answer the call
//! with a JSON-RPC response and keep serving.

#![no_main]

use std::fmt::Write as _;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rpcnode_fuzz::{FuzzNode, assert_is_answer};

static NODE: LazyLock<FuzzNode> =
    LazyLock::new(|| FuzzNode::start(&["plugin-fixtures/fuzzer.wasm"]));

fuzz_target!(
    // Start the node before the first input, so its start is not timed.
    init: { LazyLock::force(&NODE); },
    |program: &[u8]| {
        let mut hex = String::with_capacity(program.len() * 2);
        for byte in program {
            let _ = write!(hex, "{byte:02x}");
        }
        let request = format!(r#"{{"jsonrpc":"2.0","id":7,"method":"act","params":["{hex}"]}}"#);
        let answer = NODE
            .answer(&request, true)
            .expect("a request with an id is answered");
        assert_is_answer(&answer);
        assert!(
            answer.ends_with(r#""id":7}"#),
            "answered under another id: {answer}"
        );
    }
);
