//! Collaborative editing: `editDocument {doc_id, edit}` records the edit and
//! sends `documentEdited {doc_id, edit, version, editor}` to every client
//! except the editor (the calling connection).

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};
use serde::Deserialize;

#[derive(Deserialize)]
struct Edit {
    doc_id: Value,
    edit: Value,
}

fn edit_document(request: &Request) -> Result<Value, RpcError> {
    let Edit { doc_id, edit } = request.params()?;
    let version =
        host::state_increment(&format!("version:{doc_id}"), 1).map_err(RpcError::internal)?;
    let editor = request.client_id().map(str::to_owned);
    let params = json!({ "doc_id": doc_id, "edit": edit, "version": version, "editor": editor });
    let exclude: Vec<String> = editor.into_iter().collect();
    let notified =
        host::broadcast_except("documentEdited", &params, &exclude).map_err(RpcError::internal)?;
    Ok(json!({ "doc_id": doc_id, "version": version, "notified": notified }))
}

fn plugin() -> Plugin {
    Plugin::new("editor", env!("CARGO_PKG_VERSION")).method(
        Method::new("editDocument", edit_document)
            .summary("Apply an edit and tell the other editors"),
    )
}

export!(plugin);
