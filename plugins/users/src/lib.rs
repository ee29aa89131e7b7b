//! A user service, as the RpcNode seed's `UserService` has it:
//! `user_create {username, email}` and `user_get {user_id}`, both answering
//! `{"user_id", "username"}`. Users are
//! kept in host state, so every instance of the plugin sees the same users.
//! Clients may call them as `user.create`, `user-create` or `user#create`.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};
use serde::{Deserialize, Serialize};

/// The application error code for an unknown user.
const USER_NOT_FOUND: i32 = 404;

/// `user_create`'s params; positional params bind in this order.
#[derive(Deserialize)]
struct NewUser {
    username: String,
    #[serde(default)]
    email: Option<String>,
}

/// A user as it is stored and as `user_get` answers it.
#[derive(Serialize, Deserialize)]
struct User {
    user_id: i64,
    username: String,
    email: Option<String>,
}

fn user_create(request: &Request) -> Result<Value, RpcError> {
    let NewUser { username, email } = request.params()?;
    let user_id = host::state_increment("next_id", 1).map_err(RpcError::internal)?;
    let user = User {
        user_id,
        username,
        email,
    };
    host::state_set(&format!("user:{user_id}"), &user).map_err(RpcError::internal)?;
    Ok(json!({ "user_id": user.user_id, "username": user.username }))
}

fn user_get(request: &Request) -> Result<Value, RpcError> {
    let user_id: i64 = request.param(0, "user_id")?;
    host::state_get::<User>(&format!("user:{user_id}"))
        .map(|user| json!({ "user_id": user.user_id, "username": user.username }))
        .ok_or_else(|| RpcError::new(USER_NOT_FOUND, format!("User {user_id} not found")))
}

fn plugin() -> Plugin {
    Plugin::new("users", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("user_create", user_create)
                .summary("Create a user")
                .params_schema(json!({
                    "type": "object",
                    "properties": {
                        "username": { "type": "string", "minLength": 1 },
                        "email": { "type": "string" }
                    },
                    "required": ["username"]
                }))
                .result_schema(json!({
                    "type": "object",
                    "properties": {
                        "user_id": { "type": "integer" },
                        "username": { "type": "string" }
                    }
                })),
        )
        .method(
            Method::new("user_get", user_get)
                .summary("Get a user by id")
                .params_schema(json!({
                    "type": "object",
                    "properties": { "user_id": { "type": "integer" } },
                    "required": ["user_id"]
                }))
                .result_schema(json!({
                    "type": "object",
                    "properties": {
                        "user_id": { "type": "integer" },
                        "username": { "type": "string" }
                    }
                })),
        )
}

export!(plugin);
