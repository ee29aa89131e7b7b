//! Integration tests: the real server (or the real binary) over real sockets,
//! with real compiled plugins. Build the plugins first: `cargo xtask test`
//! does both.

mod background;
mod batches;
mod binary;
mod cache;
mod cli_client;
mod client_examples;
mod client_libraries;
mod cluster;
mod cors;
mod dashboard;
mod durability;
mod examples;
mod faults;
mod hooks;
mod jsonrpc_spec;
mod languages;
mod limits;
mod loading;
mod notifications;
mod observability;
mod openrpc;
mod plugin_projects;
mod redis_server;
mod reload;
mod sandbox;
mod sessions;
mod settings;
mod support;
mod tls;
mod transports;
mod webhook_cluster;
mod webhook_receiver;
mod webhooks;
