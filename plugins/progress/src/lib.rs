//! Progress reporting, as in the RpcNode seed: `processLargeFile {file_id,
//! total_chunks?}` (100 chunks unless told) answers `{"success": true,
//! file_id, total_chunks}` at once and then, chunk by chunk in background
//! work, broadcasts `progress {file_id, progress, chunk, total}`, `progress`
//! being the fraction done (0 to 1). `chunk_delay_ms` in `progress.toml` sets
//! the pace (default 100).

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};
use serde::{Deserialize, Serialize};

const DEFAULT_CHUNKS: u32 = 100;
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
}

fn delay() -> u32 {
    host::config("chunk_delay_ms").unwrap_or(100)
}

fn process_large_file(request: &Request) -> Result<Value, RpcError> {
    let File {
        file_id,
        total_chunks,
    } = request.params()?;
    let total = total_chunks.unwrap_or(DEFAULT_CHUNKS);
    let first = Chunk {
        file_id: file_id.clone(),
        chunk: 1,
        total,
    };
    host::spawn("process_chunk", &json!(first), delay()).map_err(RpcError::internal)?;
    Ok(json!({ "success": true, "file_id": file_id, "total_chunks": total }))
}

fn process_chunk(request: &Request) -> Result<Value, RpcError> {
    let chunk: Chunk = request.params()?;
    let params = json!({
        "file_id": chunk.file_id,
        "progress": f64::from(chunk.chunk) / f64::from(chunk.total),
        "chunk": chunk.chunk,
        "total": chunk.total,
    });
    host::broadcast("progress", &params).map_err(RpcError::internal)?;
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
                .summary("Process a file, broadcasting its progress")
                .params_schema(json!({
                    "type": "object",
                    "properties": {
                        "file_id": { "description": "Any JSON value naming the file" },
                        "total_chunks": { "type": "integer", "minimum": 1, "maximum": MAX_CHUNKS }
                    },
                    "required": ["file_id"]
                })),
        )
        .method(Method::new("process_chunk", process_chunk).internal())
}

export!(plugin);
