//! An HTTP body or a WebSocket frame, whole, through the node's dispatcher:
//! the JSON-RPC parser, the batch visitor, the built-in methods, params
//! validation and the example plugins' handlers and hooks. The first byte
//! picks the transport. Every answer must be a JSON-RPC response.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rpcnode_fuzz::{FuzzNode, assert_is_answer};

static NODE: LazyLock<FuzzNode> = LazyLock::new(|| {
    FuzzNode::start(&[
        "plugins/calculator.wasm",
        "plugins/pubsub.wasm",
        "plugins/users.wasm",
        "plugins/audit.wasm",
    ])
});

fuzz_target!(
    // Start the node before the first input, so its start is not timed.
    init: { LazyLock::force(&NODE); },
    |data: &[u8]| {
        let Some((&transport, text)) = data.split_first() else {
            return;
        };
        let Ok(text) = std::str::from_utf8(text) else {
            return;
        };
        if let Some(answer) = NODE.answer(text, transport % 2 == 1) {
            assert_is_answer(&answer);
        }
    }
);
