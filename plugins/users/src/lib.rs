//! A user service: `user_create {name, email}` and `user_get {user_id}`, kept in
//! host state so every instance of the plugin sees the same users.
//! Clients may call them as `user.create`, `user-create` or `user#create`.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};
use serde::Deserialize;

/// The application error code for an unknown user.
const USER_NOT_FOUND: i32 = 404;

#[derive(Deserialize)]
struct NewUser {
    name: String,
    email: String,
}

fn user_create(request: &Request) -> Result<Value, RpcError> {
    let NewUser { name, email } = request.params()?;
    if name.trim().is_empty() {
        return Err(RpcError::invalid_params("name must not be empty"));
    }
    if !email.contains('@') {
        return Err(RpcError::invalid_params(format!(
            "invalid email address: {email}"
        )));
    }
    let id = host::state_increment("next_id", 1).map_err(RpcError::internal)?;
    let user = json!({ "id": id, "name": name, "email": email });
    host::state_set(&format!("user:{id}"), &user).map_err(RpcError::internal)?;
    Ok(user)
}

fn user_get(request: &Request) -> Result<Value, RpcError> {
    let id: i64 = request.param(0, "user_id")?;
    host::state_get(&format!("user:{id}"))
        .ok_or_else(|| RpcError::new(USER_NOT_FOUND, format!("User {id} not found")))
}

fn plugin() -> Plugin {
    Plugin::new("users", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("user_create", user_create)
                .summary("Create a user from a name and an email"),
        )
        .method(Method::new("user_get", user_get).summary("Get a user by id"))
}

export!(plugin);
