//! The settings loaders: a config file's text, then (after a NUL byte)
//! `RPCNODE_*` variables as `NAME=value` lines, into a server configuration.
//! Bad settings must be errors, never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcnode::cli::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, environment) = text.split_once('\0').unwrap_or((text, ""));
    if let Ok(settings) = Settings::from_toml(file) {
        let _ = settings.into_config();
    }
    let variables = environment.lines().filter_map(|line| {
        let (name, value) = line.split_once('=')?;
        Some((format!("RPCNODE_{name}"), value.to_owned()))
    });
    if let Ok(settings) = Settings::default().resolve(variables) {
        let _ = settings.into_config();
    }
});
