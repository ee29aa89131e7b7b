//! Progress reporting: `processLargeFile {file_id, total_chunks?}` answers at
//! once and then, chunk by chunk in background work, sends
//! `progress {file_id, progress, chunk, total}` to the caller (or to every
//! client when called over HTTP). `chunk_delay_ms` in `progress.toml` sets the
//! pace (default 100).

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};
use serde::{Deserialize, Serialize};

const MAX_CHUNKS: u32 = 10_000;

#[derive(Deserialize)]
struct File {
    file_id: Value,
    total_chunks: Option<u32>,
}

/// One step of the background work, passed from chunk to chunk.
#[derive(Serialize, Deserialize)]
struct Chunk {
    file_id: Value,
    chunk: u32,
    total: u32,
    client_id: Option<String>,
}

fn delay() -> u32 {
    host::config("chunk_delay_ms").unwrap_or(100)
}

fn process_large_file(request: &Request) -> Result<Value, RpcError> {
    let File {
        file_id,
        total_chunks,
    } = request.params()?;
    let total = total_chunks.unwrap_or(10);
    if total == 0 || total > MAX_CHUNKS {
        return Err(RpcError::invalid_params(format!(
            "total_chunks must be 1 to {MAX_CHUNKS}"
        )));
    }
    let first = Chunk {
        file_id: file_id.clone(),
        chunk: 1,
        total,
        client_id: request.client_id().map(str::to_owned),
    };
    host::spawn("process_chunk", &json!(first), delay()).map_err(RpcError::internal)?;
    Ok(json!({ "status": "processing", "file_id": file_id, "total_chunks": total }))
}

fn process_chunk(request: &Request) -> Result<Value, RpcError> {
    let chunk: Chunk = request.params()?;
    let params = json!({
        "file_id": chunk.file_id,
        "progress": chunk.chunk * 100 / chunk.total,
        "chunk": chunk.chunk,
        "total": chunk.total,
    });
    match &chunk.client_id {
        // A client that left ends its job.
        Some(client_id) => {
            host::notify(client_id, "progress", &params).map_err(RpcError::internal)?
        }
        None => {
            host::broadcast("progress", &params).map_err(RpcError::internal)?;
        }
    }
    if chunk.chunk < chunk.total {
        let next = Chunk {
            chunk: chunk.chunk + 1,
            ..chunk
        };
        host::spawn("process_chunk", &json!(next), delay()).map_err(RpcError::internal)?;
    }
    Ok(Value::Null)
}

fn plugin() -> Plugin {
    Plugin::new("progress", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("processLargeFile", process_large_file)
                .summary("Process a file, reporting progress"),
        )
        .method(Method::new("process_chunk", process_chunk).internal())
}

export!(plugin);
