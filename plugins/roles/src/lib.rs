//! Role-based notifications: `authenticate {role}` ("user" or "admin") stores
//! the role as client metadata; `adminAction {action}` (admins only) sends
//! `adminNotification` to users and `adminLog` to admins.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};
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
    let Authenticate { role } = request.params()?;
    if !ROLES.contains(&role.as_str()) {
        return Err(RpcError::invalid_params(format!(
            "role must be one of {ROLES:?}"
        )));
    }
    host::client_set(client_id, "role", &role).map_err(RpcError::internal)?;
    // Each role is a topic, so a message to a role is written once.
    for other in ROLES {
        host::unsubscribe(client_id, &format!("role:{other}"));
    }
    host::subscribe(client_id, &format!("role:{role}")).map_err(RpcError::internal)?;
    Ok(json!({ "authenticated": true, "role": role }))
}

fn admin_action(request: &Request) -> Result<Value, RpcError> {
    let client_id = request.require_client()?;
    if host::client_get::<String>(client_id, "role").as_deref() != Some("admin") {
        return Err(RpcError::new(FORBIDDEN, "adminAction needs the admin role"));
    }
    let Action { action } = request.params()?;
    let users = host::publish(
        "role:user",
        "adminNotification",
        &json!({ "action": action }),
    )
    .map_err(RpcError::internal)?;
    let admins = host::publish(
        "role:admin",
        "adminLog",
        &json!({ "action": action, "admin": client_id }),
    )
    .map_err(RpcError::internal)?;
    Ok(json!({ "users_notified": users, "admins_notified": admins }))
}

fn plugin() -> Plugin {
    Plugin::new("roles", env!("CARGO_PKG_VERSION"))
        .method(Method::new("authenticate", authenticate).summary("Take the role user or admin"))
        .method(
            Method::new("adminAction", admin_action)
                .summary("Tell users and admins about an admin action"),
        )
}

export!(plugin);
