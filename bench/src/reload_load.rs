//! Scenario 5: scenario 1's HTTP load on rpcnode while the calculator plugin
//! file is replaced over and over (alternating two versions), next to the
//! same load with no replacement. Every answer must be right: either
//! version's `{"sum":3,…}`.

use std::time::Duration;

use crate::built;
use crate::compare::{ADD, CONNECTIONS};
use crate::load::{self, Outcome, Window};
use crate::peers::Peer;

pub async fn run(window: Window, swap_every: Duration) -> anyhow::Result<()> {
    let versions = [
        std::fs::read(built("plugin-fixtures", "calculator_v2.wasm")?)?,
        std::fs::read(built("plugins", "calculator.wasm")?)?,
    ];
    let peer = Peer::rpcnode(&[(built("plugins", "calculator.wasm")?, "calculator.wasm")]).await?;
    let address = peer.address;
    let file = peer
        .plugins_folder()
        .expect("an rpcnode peer has a plugins folder")
        .join("calculator.wasm");

    let steady = load::http(address, ADD, 1, CONNECTIONS, window).await?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let swapper = tokio::spawn(async move {
        let mut swaps = 0usize;
        let mut tick = tokio::time::interval(swap_every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut stopped => return Ok::<_, std::io::Error>(swaps),
                _ = tick.tick() => {
                    std::fs::write(&file, &versions[swaps % 2])?;
                    swaps += 1;
                }
            }
        }
    });
    let swapping = load::http(address, ADD, 1, CONNECTIONS, window).await;
    let _ = stop.send(());
    let swaps = swapper.await??;
    let swapping = swapping?;

    println!("| Scenario 5: HTTP `add`, 64 connections | Requests/s | p50 | p99 | max | Failed |");
    println!("|---|---|---|---|---|---|");
    row("no reload", &steady);
    row(
        &format!(
            "calculator.wasm replaced every {} ms (about {swaps} times)",
            swap_every.as_millis()
        ),
        &swapping,
    );
    Ok(())
}

fn row(what: &str, outcome: &Outcome) {
    println!(
        "| {what} | {:.0} | {} µs | {} µs | {} µs | {} |",
        outcome.rate(),
        outcome.latency.value_at_quantile(0.5),
        outcome.latency.value_at_quantile(0.99),
        outcome.latency.max(),
        outcome.errors
    );
}
