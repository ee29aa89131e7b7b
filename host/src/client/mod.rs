//! The client commands of the `rpcnode` binary, for talking to a node from a
//! shell: `rpcnode call` sends a request ([`call`]), `rpcnode listen` prints
//! notifications as JSON lines, resuming after a disconnect ([`listen`]), and
//! `rpcnode discover` lists the methods ([`discover`]).
//!
//! Exit codes tell failures apart: 0 success, 1 a JSON-RPC error answer,
//! 2 a usage error (flags, params, files), 3 a connection or protocol error.

use std::ffi::{OsStr, OsString};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod call;
pub mod connection;
pub mod discover;
pub mod listen;

/// Why a client command failed, which decides its exit code.
#[derive(Debug)]
pub enum Failure {
    /// The node answered with a JSON-RPC error (printed as it came).
    Rpc(serde_json::Value),
    /// The command line or an input file is wrong.
    Usage(anyhow::Error),
    /// The node could not be reached or did not speak JSON-RPC.
    Transport(anyhow::Error),
}

impl Failure {
    /// A usage error saying `message`.
    pub fn usage(message: String) -> Self {
        Self::Usage(anyhow::Error::msg(message))
    }

    /// A connection error saying `message`.
    pub fn transport(message: String) -> Self {
        Self::Transport(anyhow::Error::msg(message))
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "rpcnode",
    version,
    about = "Talk to an rpcnode (or any JSON-RPC 2.0) server."
)]
struct Client {
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    Call(call::CallArgs),
    Listen(listen::ListenArgs),
    Discover(discover::DiscoverArgs),
}

/// Whether `first`, the binary's first argument, names a client command.
pub fn is_client_command(first: Option<&OsStr>) -> bool {
    matches!(
        first.and_then(OsStr::to_str),
        Some("call" | "listen" | "discover")
    )
}

/// Run the client command in `args` (the binary's whole command line).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let client = match Client::try_parse_from(args) {
        Ok(client) => client,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("starting the async runtime");
    let outcome = runtime.block_on(async {
        match client.command {
            ClientCommand::Call(args) => call::run(args).await,
            ClientCommand::Listen(args) => listen::run(args).await,
            ClientCommand::Discover(args) => discover::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Rpc(error)) => {
            eprintln!("{}", pretty(&error));
            ExitCode::from(1)
        }
        Err(Failure::Usage(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
        Err(Failure::Transport(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::from(3)
        }
    }
}

/// `value` as indented JSON.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values serialize")
}
