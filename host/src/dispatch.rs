//! Request dispatch, shared by both transports: read a message, run the
//! `before-request` hooks, route to the plugin, run the `after-request` hooks
//! and write the response.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use serde_json::value::RawValue;
use tracing::Instrument as _;

use crate::builtin;
use crate::headers::RequestHeaders;
use crate::jsonrpc::{
    self, INTERNAL_ERROR, Item, METHOD_NOT_FOUND, Message, RATE_LIMITED, REQUEST_TIMEOUT, Request,
    RpcError,
};
use crate::node::Node;
use crate::plugin::{
    CallError, GuestError, Hook, LoadedPlugin, MethodTable, RequestContext, Route, Transport,
};

/// Who sent a message: the same for every request of one HTTP body or one
/// WebSocket connection.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The peer's address.
    pub remote_addr: SocketAddr,
    /// What each of the caller's requests tells its plugin, but the request id.
    context: RequestContext,
    /// The HTTP request's or the WebSocket handshake's headers.
    headers: RequestHeaders,
}

impl Caller {
    /// A caller over `transport` with `headers`.
    pub fn new(
        transport: Transport,
        client_id: Option<Arc<str>>,
        remote_addr: SocketAddr,
        headers: RequestHeaders,
    ) -> Self {
        Self {
            remote_addr,
            context: RequestContext {
                request_id: None,
                transport,
                client_id,
                remote_addr: Some(remote_addr.to_string().into()),
            },
            headers,
        }
    }

    /// The same caller with the headers of another request on its
    /// connection.
    pub fn with_headers(&self, headers: RequestHeaders) -> Self {
        Self {
            headers,
            ..self.clone()
        }
    }

    /// The WebSocket client id, for WebSocket connections.
    pub fn client_id(&self) -> Option<&Arc<str>> {
        self.context.client_id.as_ref()
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.context.transport
    }

    /// The context of one request: shared parts are reference-counted, not
    /// copied.
    fn context(&self, request_id: Option<&RawValue>) -> RequestContext {
        RequestContext {
            request_id: request_id.map(|id| id.get().into()),
            ..self.context.clone()
        }
    }
}

/// A plugin's view of an outcome: the WIT result type.
type WitOutcome = Result<String, GuestError>;

/// One request on its way through the hooks and the handler.
struct Call<'a> {
    /// The method as the client spelled it.
    requested: &'a str,
    /// The method as hooks and the handler see it.
    method: Arc<str>,
    /// Where the method goes, unless it is built in or unknown.
    route: Option<&'a Route>,
    params: Option<Arc<str>>,
    context: RequestContext,
    caller: &'a Caller,
}

impl Node {
    /// Answer one HTTP body or WebSocket text frame. `None` means nothing is
    /// to be sent back (only notifications were received).
    pub async fn handle_message(&self, text: &[u8], caller: &Caller) -> Option<String> {
        let message = match jsonrpc::parse(text, self.config.max_batch_size) {
            Ok(message) => message,
            Err(error) => return Some(jsonrpc::failure(None, &error)),
        };
        let table = self.registry.current();
        match message {
            Message::Single(item) => self.handle_item(&table, item, caller).await,
            Message::Batch(items) => {
                let answers = items
                    .into_iter()
                    .map(|item| self.handle_item(&table, item, caller));
                jsonrpc::batch(join_all(answers).await.into_iter().flatten().collect())
            }
        }
    }

    async fn handle_item(
        &self,
        table: &MethodTable,
        item: Item<'_>,
        caller: &Caller,
    ) -> Option<String> {
        match item {
            // Boxed: a request's future is large (hooks, the plugin call, the
            // span), and every future holding it would otherwise copy its size
            // each time it moves (into a task, a batch, a connection).
            Ok(request) => Box::pin(self.handle_request(table, request, caller)).await,
            Err(rejected) => Some(jsonrpc::failure(rejected.id, &rejected.error)),
        }
    }

    async fn handle_request(
        &self,
        table: &MethodTable,
        request: Request<'_>,
        caller: &Caller,
    ) -> Option<String> {
        let _pending = self.track_pending();
        let started = Instant::now();
        let route = table.route(&request.method);
        let call = Call {
            requested: &request.method,
            // Hooks see the name the plugin registered, however the client
            // spelled it, so a policy on `user_create` also covers `user.create`.
            method: route.map_or_else(
                || Arc::from(request.method.as_ref()),
                |route| Arc::clone(&route.method),
            ),
            route,
            params: request.params.map(|params| params.get().into()),
            context: caller.context(request.id),
            caller,
        };

        if let Some(refused) = self.rate_limited(caller) {
            return request.id.map(|id| jsonrpc::failure(Some(id), &refused));
        }
        let plugin = route.map(|route| route.plugin.name());
        let span = tracing::debug_span!(
            "request",
            method = &*call.method,
            transport = transport_name(caller.transport()),
            client = caller.client_id().map(|id| &**id),
            plugin,
        );
        let deadline = started + self.config.request_timeout;
        let outcome = async {
            let outcome = self.run(table, &call, deadline).await;
            self.after_request(table, &call, &outcome).await;
            // Field values are only computed when debug logs are on.
            let elapsed_us = || started.elapsed().as_micros() as u64;
            match &outcome {
                Ok(_) => tracing::debug!(elapsed_us = elapsed_us(), "request answered"),
                Err(error) => {
                    tracing::debug!(
                        elapsed_us = elapsed_us(),
                        code = error.code,
                        "request failed"
                    );
                }
            }
            outcome
        }
        .instrument(span)
        .await;
        let label = match route {
            Some(route) => &route.method,
            None if builtin::is_builtin(call.requested) => call.requested,
            None => "unknown",
        };
        self.metrics
            .request(label, outcome.is_ok(), started.elapsed());

        let id = request.id?;
        Some(match outcome {
            Ok(result) => jsonrpc::success(id, &result),
            Err(error) => jsonrpc::failure(Some(id), &error),
        })
    }

    /// The error for a caller over its rate limit, if it is.
    fn rate_limited(&self, caller: &Caller) -> Option<RpcError> {
        let limiter = self.rate_limiter.as_ref()?;
        let allowed = match caller.client_id() {
            Some(client_id) => limiter.allow(client_id),
            None => limiter.allow(&caller.remote_addr.ip().to_string()),
        };
        if allowed {
            return None;
        }
        self.metrics.rate_limited.inc();
        let limit = limiter.limit();
        let detail = format_args!(
            "rate limit exceeded ({} requests per second, bursts of {})",
            limit.per_second, limit.burst
        );
        Some(RpcError::new(RATE_LIMITED, detail))
    }

    /// The `before-request` hooks, then the built-in method or the handler.
    async fn run(
        &self,
        table: &MethodTable,
        call: &Call<'_>,
        deadline: Instant,
    ) -> Result<String, RpcError> {
        for plugin in table.hooked(Hook::BeforeRequest) {
            match plugin
                .before_request(
                    Arc::clone(&call.method),
                    call.params.clone(),
                    call.context.clone(),
                    call.caller.headers.clone(),
                    deadline,
                )
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(rejection)) => return Err(plugin_error(plugin, rejection)),
                Err(error) => {
                    return Err(self.call_failed(plugin, "before-request", &call.method, error));
                }
            }
        }
        let params = call.params.as_deref();
        if let Some(outcome) = builtin::call(self, call.requested, params, call.caller) {
            return outcome;
        }
        let Some(route) = call.route else {
            return Err(RpcError::new(METHOD_NOT_FOUND, call.requested));
        };
        let plugin = &route.plugin;
        let handled = plugin
            .handle(
                Arc::clone(&route.method),
                call.params.clone(),
                call.context.clone(),
                call.caller.headers.clone(),
                deadline,
            )
            .await;
        match handled {
            Ok(Ok(_)) if route.notification => Ok("null".to_owned()),
            Ok(Ok(result)) => match jsonrpc::check_json(&result) {
                Ok(_) => Ok(result),
                Err(error) => {
                    tracing::error!(
                        plugin = plugin.name(),
                        method = &*route.method,
                        "handler returned invalid JSON: {error}"
                    );
                    let detail = format_args!("plugin {} returned invalid JSON", plugin.name());
                    Err(RpcError::new(INTERNAL_ERROR, detail))
                }
            },
            Ok(Err(error)) => Err(plugin_error(plugin, error)),
            Err(error) => Err(self.call_failed(plugin, "handle", &route.method, error)),
        }
    }

    /// The `after-request` hooks; their failures are logged, never sent.
    async fn after_request(
        &self,
        table: &MethodTable,
        call: &Call<'_>,
        outcome: &Result<String, RpcError>,
    ) {
        let hooks = table.hooked(Hook::AfterRequest);
        if hooks.is_empty() {
            return;
        }
        let outcome: WitOutcome = match outcome {
            Ok(result) => Ok(result.clone()),
            Err(error) => Err(GuestError {
                code: error.code,
                message: error.message.clone(),
                data: error.data.as_ref().map(|data| data.get().to_owned()),
            }),
        };
        let deadline = Instant::now() + self.config.request_timeout;
        for plugin in hooks {
            let done = plugin.after_request(
                Arc::clone(&call.method),
                call.params.clone(),
                call.context.clone(),
                outcome.clone(),
                call.caller.headers.clone(),
                deadline,
            );
            if let Err(error) = done.await {
                self.call_failed(plugin, "after-request", &call.method, error);
            }
        }
    }

    /// Run the `on-connect` hooks for a new WebSocket client.
    pub async fn connected(&self, caller: &Caller) {
        let Some(client_id) = caller.client_id() else {
            return;
        };
        let deadline = Instant::now() + self.config.request_timeout;
        for plugin in self.registry.current().hooked(Hook::OnConnect) {
            let context = caller.context(None);
            let headers = caller.headers.clone();
            if let Err(error) = plugin
                .on_connect(Arc::clone(client_id), context, headers, deadline)
                .await
            {
                self.call_failed(plugin, "on-connect", client_id, error);
            }
        }
    }

    /// Run the `on-disconnect` hooks for a departed WebSocket client.
    pub async fn disconnected(&self, client_id: &str) {
        let deadline = Instant::now() + self.config.request_timeout;
        for plugin in self.registry.current().hooked(Hook::OnDisconnect) {
            if let Err(error) = plugin.on_disconnect(client_id, deadline).await {
                self.call_failed(plugin, "on-disconnect", client_id, error);
            }
        }
    }

    /// Log a failed plugin call in full and say what the client gets.
    fn call_failed(
        &self,
        plugin: &LoadedPlugin,
        export: &str,
        subject: &str,
        error: CallError,
    ) -> RpcError {
        let name = plugin.name();
        match error {
            CallError::Timeout => {
                tracing::warn!(
                    plugin = name,
                    export,
                    subject,
                    "plugin call ran past the request timeout"
                );
                RpcError::new(
                    REQUEST_TIMEOUT,
                    format_args!(
                        "request timed out after {:?} (request_timeout)",
                        self.config.request_timeout
                    ),
                )
            }
            CallError::Fault(error) => {
                tracing::error!(
                    plugin = name,
                    export,
                    subject,
                    "plugin call failed: {error:?}"
                );
                RpcError::new(INTERNAL_ERROR, format_args!("plugin {name} failed"))
            }
        }
    }
}

/// A plugin's error as the client sees it; data that is not JSON is dropped
/// (and logged) rather than sent.
fn plugin_error(plugin: &LoadedPlugin, error: GuestError) -> RpcError {
    let data = error
        .data
        .and_then(|data| match RawValue::from_string(data) {
            Ok(data) => Some(data),
            Err(problem) => {
                tracing::warn!(
                    plugin = plugin.name(),
                    "dropping error data that is not JSON: {problem}"
                );
                None
            }
        });
    RpcError::from_plugin(error.code, error.message, data)
}

/// The transport as logs name it.
fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Http => "http",
        Transport::Websocket => "websocket",
        Transport::Background => "background",
    }
}
