//! Role-based notifications, as in the RpcNode seed: `authenticate {role}`
//! ("user" or "admin") stores the role as client metadata and answers
//! `{"success": true, role}` (a `client_id` in the params, which the seed's
//! clients send, is accepted and not trusted: the connection is who calls);
//! `adminAction {action}` (admins only) sends `adminNotification {action,
//! timestamp}` to users and `adminLog {action, timestamp, admin}` to admins.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json, unix_time};
use serde::Deserialize;

/// The error code for a caller without the admin role.
const FORBIDDEN: i32 = 403;
const ROLES: [&str; 2] = ["user", "admin"];

#[derive(Deserialize)]
struct Authenticate {
    role: String,
}

#[derive(Deserialize)]
struct Action {
    action: Value,
}

fn authenticate(request: &Request) -> Result<Value, RpcError> {
    let client_id = request.require_client()?;
    // The params schema lets only the roles in ROLES through.
    let Authenticate { role } = request.params()?;
    host::client_set(client_id, "role", &role).map_err(RpcError::internal)?;
    // Each role is a topic, so a message to a role is written once.
    for other in ROLES {
        host::unsubscribe(client_id, &format!("role:{other}"));
    }
    host::subscribe(client_id, &format!("role:{role}")).map_err(RpcError::internal)?;
    Ok(json!({ "success": true, "role": role }))
}

fn admin_action(request: &Request) -> Result<Value, RpcError> {
    let client_id = request.require_client()?;
    if host::client_get::<String>(client_id, "role").as_deref() != Some("admin") {
        return Err(RpcError::new(FORBIDDEN, "adminAction needs the admin role"));
    }
    let Action { action } = request.params()?;
    let timestamp = unix_time();
    let users = host::publish(
        "role:user",
        "adminNotification",
        &json!({ "action": action, "timestamp": timestamp }),
    )
    .map_err(RpcError::internal)?;
    let admins = host::publish(
        "role:admin",
        "adminLog",
        &json!({ "action": action, "timestamp": timestamp, "admin": client_id }),
    )
    .map_err(RpcError::internal)?;
    Ok(json!({ "success": true, "users_notified": users, "admins_notified": admins }))
}

fn plugin() -> Plugin {
    Plugin::new("roles", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("authenticate", authenticate)
                .summary("Take the role user or admin")
                .params_schema(json!({
                    "type": "object",
                    "properties": {
                        "role": { "type": "string", "enum": ROLES },
                        "client_id": { "type": "string", "description": "Accepted for the seed's clients; the connection is who calls" }
                    },
                    "required": ["role"]
                })),
        )
        .method(
            Method::new("adminAction", admin_action)
                .summary("Tell users and admins about an admin action")
                .params_schema(json!({
                    "type": "object",
                    "properties": { "action": { "description": "Any JSON value describing the action" } },
                    "required": ["action"]
                })),
        )
}

export!(plugin);
