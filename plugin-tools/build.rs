//! Embeds the WIT files and the plugin SDKs, which the `rpcnode` binary writes
//! out for projects built away from a checkout (see `src/kit.rs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("plugin-tools lives in the workspace");
    let mut files = Vec::new();
    for top in ["wit", "plugin-sdk"] {
        collect(&root.join(top), &mut files);
    }
    files.sort();
    let mut source = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for file in &files {
        // A changed file rebuilds the embedding; a new one is always imported
        // by a changed one.
        println!("cargo::rerun-if-changed={}", file.display());
        let relative = file.strip_prefix(root).expect("under the root");
        writeln!(
            source,
            "    ({:?}, include_bytes!({:?})),",
            relative.to_str().expect("UTF-8 path"),
            file.to_str().expect("UTF-8 path")
        )
        .expect("writing to a String");
    }
    source.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("embedded.rs"), source).expect("writing embedded.rs");
}

/// Every source file under `dir`; build outputs and caches left out.
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading an SDK folder") {
        let path = entry.expect("reading an SDK folder").path();
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("");
        if name.starts_with('.') || matches!(name, "__pycache__" | "node_modules" | "target") {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
