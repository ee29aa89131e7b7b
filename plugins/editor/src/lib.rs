//! Collaborative editing, as in the RpcNode seed: `editDocument {doc_id,
//! edit, editor?}` records the edit and sends `documentEdited {doc_id, edit,
//! editor, version}` to every client except the editor: the calling
//! connection, and the client named by `editor` when given. It answers
//! `{"success": true, doc_id, version, clients_notified}`.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};
use serde::Deserialize;

#[derive(Deserialize)]
struct Edit {
    doc_id: Value,
    edit: Value,
    editor: Option<String>,
}

fn edit_document(request: &Request) -> Result<Value, RpcError> {
    let Edit {
        doc_id,
        edit,
        editor,
    } = request.params()?;
    let version =
        host::state_increment(&format!("version:{doc_id}"), 1).map_err(RpcError::internal)?;
    let caller = request.client_id().map(str::to_owned);
    let editor = editor.or_else(|| caller.clone());
    let params = json!({ "doc_id": doc_id, "edit": edit, "editor": editor, "version": version });
    let exclude: Vec<String> = caller.into_iter().chain(editor).collect();
    let notified =
        host::broadcast_except("documentEdited", &params, &exclude).map_err(RpcError::internal)?;
    Ok(json!({ "success": true, "doc_id": doc_id, "version": version, "clients_notified": notified }))
}

fn plugin() -> Plugin {
    Plugin::new("editor", env!("CARGO_PKG_VERSION")).method(
        Method::new("editDocument", edit_document)
            .summary("Apply an edit and tell the other editors")
            .params_schema(json!({
                "type": "object",
                "properties": {
                    "doc_id": { "description": "Any JSON value naming the document" },
                    "edit": { "description": "The edit, any JSON value" },
                    "editor": { "type": "string", "description": "The editing client's id; the caller's connection unless given" }
                },
                "required": ["doc_id", "edit"]
            })),
    )
}

export!(plugin);
