//! The `rpcnode` binary: read settings, start the server, print the address,
//! serve until SIGINT or SIGTERM; or, with `--check`, load the plugins once
//! and report; or, as `rpcnode new` and `rpcnode build`, start and build
//! plugin projects; or, as `rpcnode call`, `listen` and `discover`, talk to
//! a node.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use rpcnode::cli::{LogFormat, Settings};
use rpcnode::{Config, Node, Server};
use tracing_subscriber::EnvFilter;

/// Requests allocate many small short-lived objects (parsed JSON, answers,
/// futures) on both worker threads; mimalloc's per-thread free lists serve
/// them faster than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    if rpcnode_plugin_tools::command::is_tool_command(std::env::args_os().nth(1).as_deref()) {
        return rpcnode_plugin_tools::command::main(std::env::args_os());
    }
    if rpcnode::client::is_client_command(std::env::args_os().nth(1).as_deref()) {
        return rpcnode::client::main(std::env::args_os());
    }
    serve()
}

#[tokio::main]
async fn serve() -> ExitCode {
    let settings = match Settings::parse().resolve(std::env::vars()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match settings.log_format.unwrap_or(LogFormat::Text) {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    if settings.check_plugins {
        return check(settings.into_config()?).await;
    }
    // Installed before anything is served: a SIGTERM that arrives as soon as
    // the address is printed still stops the server gracefully.
    let stop = shutdown_signal()?;
    let server = Server::start(settings.into_config()?).await?;
    // Scripts and tests read the address from the first line: print it once,
    // only when connections are being accepted, the admin address with it in
    // one write.
    let mut lines = format!("listening on {}\n", server.url());
    if let Some(admin) = server.admin_url() {
        lines.push_str(&format!("admin on {admin}\n"));
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(lines.as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    server.run_until(stop).await?;
    tracing::info!("stopped");
    Ok(())
}

/// `--check`: load the plugins folder once, print one line per plugin file
/// on stdout, and fail if any file was refused.
async fn check(mut config: Config) -> anyhow::Result<()> {
    // Loading plugins needs no data: leave the data folder to the server.
    config.watch = false;
    config.data_dir = None;
    let node = Node::start(config).await?;
    let table = node.registry.current();
    let mut stdout = std::io::stdout().lock();
    for plugin in &table.plugins {
        let manifest = &plugin.manifest;
        writeln!(
            stdout,
            "ok {}: {} {} ({} methods)",
            plugin.file.display(),
            manifest.name,
            manifest.version,
            manifest.methods.len()
        )?;
    }
    for failure in &table.failures {
        // One line per file, whatever the compiler's message looks like.
        let reason: Vec<&str> = failure.reason.split_whitespace().collect();
        let file = failure.file.display();
        writeln!(stdout, "failed {file}: {}", reason.join(" "))?;
    }
    drop(stdout);
    node.shutdown().await;
    anyhow::ensure!(
        table.failures.is_empty(),
        "{} of {} plugin files failed to load",
        table.failures.len(),
        table.failures.len() + table.plugins.len()
    );
    Ok(())
}

/// Install the SIGINT (Ctrl-C) and SIGTERM handlers now; the future ends
/// when either signal arrives.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
    })
}
