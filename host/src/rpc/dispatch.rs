//! Request dispatch, shared by both transports: read a message, run the
//! `before-request` hooks, route to the built-in method or the plugin, run
//! the `after-request` hooks and write the response.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::future::{MaybeDone, maybe_done};
use serde_json::value::RawValue;
use tracing::Instrument as _;

use super::batch;
use super::builtin::{self, Builtins};
use super::caller::Caller;
use super::openrpc::{self, About};
use super::wire::{
    self, INTERNAL_ERROR, INVALID_PARAMS, Item, METHOD_NOT_FOUND, Message, RATE_LIMITED,
    REQUEST_TIMEOUT, Request, RpcError,
};
use crate::metrics::{GaugeGuard, Metrics};
use crate::plugin::{
    CallContext, CallError, ConnectionEvent, GuestError, Hook, LoadedPlugin, MethodTable, Problem,
    Registry, Route, Transport,
};
use crate::push::Broker;
use crate::ratelimit::RateLimiter;

/// What dispatch needs: the plugins, the broker for built-in methods, the
/// counters, and the limits.
pub struct Dispatcher {
    /// The plugins' methods and hooks.
    pub registry: Arc<Registry>,
    broker: Arc<Broker>,
    about: About,
    metrics: Arc<Metrics>,
    rate_limiter: Option<RateLimiter>,
    max_batch_size: usize,
    request_timeout: Duration,
}

/// A plugin's view of an outcome: the WIT result type.
pub(super) type WitOutcome = Result<String, GuestError>;

/// One request on its way through the hooks and the handler.
pub struct Call<'a> {
    /// The method as the client spelled it.
    requested: &'a str,
    /// The method as hooks and the handler see it.
    method: &'a str,
    /// Where the method goes, unless it is built in or unknown.
    route: Option<&'a Route>,
    params: Option<&'a str>,
    id: Option<&'a RawValue>,
    caller: &'a Caller,
    /// When its message was read: its latency counts from then.
    received: Instant,
}

impl<'a> Call<'a> {
    /// A request for `method` with `params`, as routed by `table`, read at
    /// `received` (one clock reading serves a whole batch).
    pub fn new(
        table: &'a MethodTable,
        method: &'a str,
        params: Option<&'a str>,
        id: Option<&'a RawValue>,
        caller: &'a Caller,
        received: Instant,
    ) -> Self {
        let route = table.route(method);
        Self {
            requested: method,
            // Hooks see the name the plugin registered, however the client
            // spelled it, so a policy on `user_create` also covers `user.create`.
            method: route.map_or(method, |route| &route.method),
            route,
            params,
            id,
            caller,
            received,
        }
    }

    /// Where the method goes, unless it is built in or unknown.
    pub(super) fn route(&self) -> Option<&'a Route> {
        self.route
    }

    /// The params as JSON text.
    pub(super) fn params(&self) -> Option<&'a str> {
        self.params
    }

    /// The request's id; `None` for a notification.
    pub(super) fn id(&self) -> Option<&'a RawValue> {
        self.id
    }

    /// What a plugin called for this request can ask about it.
    fn context(&self) -> CallContext {
        self.caller.context(self.id)
    }
}

/// A request the rate limit let through, on its way to its handler.
pub(super) struct Admission<'a> {
    /// Counts the request as pending until it is answered.
    _pending: GaugeGuard<'a>,
    started: Instant,
    /// When the handler must be done.
    pub(super) deadline: Instant,
    /// The request's log span.
    pub(super) span: tracing::Span,
    /// The `before-request` hook's refusal, if one refused.
    pub(super) refusal: Option<RpcError>,
}

/// The answer to `call` with `outcome`; none for a notification.
pub(super) fn answer(call: &Call<'_>, outcome: Result<String, RpcError>) -> Option<String> {
    let id = call.id?;
    Some(match outcome {
        Ok(result) => wire::success(id, &result),
        Err(error) => wire::failure(Some(id), &error),
    })
}

impl Dispatcher {
    /// A dispatcher over `registry`'s plugins and `broker`'s clients.
    pub fn new(
        registry: Arc<Registry>,
        broker: Arc<Broker>,
        about: About,
        metrics: Arc<Metrics>,
        rate_limiter: Option<RateLimiter>,
        max_batch_size: usize,
        request_timeout: Duration,
    ) -> Self {
        Self {
            registry,
            broker,
            about,
            metrics,
            rate_limiter,
            max_batch_size,
            request_timeout,
        }
    }

    /// How long a request may take.
    pub(super) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Answer one HTTP body or WebSocket text frame. `None` means nothing is
    /// to be sent back (only notifications were received).
    pub async fn handle_message(&self, text: &str, caller: &Caller) -> Option<String> {
        let message = match wire::parse(text, self.max_batch_size) {
            Ok(message) => message,
            Err(error) => return Some(wire::failure(None, &error)),
        };
        let table = self.registry.current();
        match message {
            Message::Single(item) => self.handle_item(&table, item, caller).await,
            Message::Batch(items) => {
                let answers = batch::answer_all(self, &table, items, caller).await;
                wire::batch(answers.into_iter().flatten().collect())
            }
        }
    }

    /// The answer to one element of a message, if it gets one.
    async fn handle_item(
        &self,
        table: &MethodTable,
        item: Item<'_>,
        caller: &Caller,
    ) -> Option<String> {
        match item {
            // Boxed: a request's future is large (hooks, the plugin call, the
            // span), and every future holding it would otherwise copy its size
            // each time it moves (into a task or a connection).
            Ok(request) => Box::pin(self.handle_request(table, request, caller)).await,
            Err(rejected) => Some(wire::failure(rejected.id, &rejected.error)),
        }
    }

    async fn handle_request(
        &self,
        table: &MethodTable,
        request: Request<'_>,
        caller: &Caller,
    ) -> Option<String> {
        let call = Call::new(
            table,
            &request.method,
            request.params.map(RawValue::get),
            request.id,
            caller,
            Instant::now(),
        );
        if let Err(invalid) = self.check_params(&call) {
            return self.refuse_params(&call, &invalid);
        }
        let outcome = self
            .serve(table, &call, async |call, deadline| {
                self.respond(table, call, deadline).await
            })
            .await;
        answer(&call, outcome)
    }

    /// The answer to a request whose params its method's schema refuses
    /// (none for a notification, which is counted instead).
    pub(super) fn refuse_params(&self, call: &Call<'_>, invalid: &RpcError) -> Option<String> {
        let Some(id) = call.id else {
            self.metrics.invalid_notifications.inc();
            return None;
        };
        Some(wire::failure(Some(id), invalid))
    }

    /// Serve `call` with `respond` between the hooks: the rate limit and the
    /// `before-request` hooks may refuse it; `respond` gets the deadline the
    /// hooks left it; the `after-request` hooks and the metrics see its
    /// outcome.
    pub async fn serve(
        &self,
        table: &MethodTable,
        call: &Call<'_>,
        respond: impl AsyncFnOnce(&Call<'_>, Instant) -> Result<String, RpcError>,
    ) -> Result<String, RpcError> {
        let mut admission = self.admit(call)?;
        self.before_request(table, call, &mut admission).await;
        let outcome = match admission.refusal.take() {
            Some(refused) => Err(refused),
            None => {
                respond(call, admission.deadline)
                    .instrument(admission.span.clone())
                    .await
            }
        };
        self.after_request(table, call, &admission, &outcome).await;
        self.finish(call, admission, outcome, Instant::now())
    }

    /// The first step of serving `call`: the rate limit, whose refusal is
    /// final (and counted); the admission starts the request's clock and
    /// its log span.
    pub(super) fn admit(&self, call: &Call<'_>) -> Result<Admission<'_>, RpcError> {
        let pending = self.metrics.pending_requests.track();
        let started = call.received;
        let caller = call.caller;
        // A refusal by the rate limit is counted like any answer, but runs no
        // plugin code, hooks included: the limit is there to shed load.
        if let Some(refused) = self.rate_limited(caller) {
            self.count(call, false, started.elapsed());
            return Err(refused);
        }
        let plugin = call.route.map(|route| route.plugin.name());
        let span = tracing::debug_span!(
            "request",
            method = call.method,
            transport = transport_name(caller.transport()),
            client = caller.client_id().map(|id| &**id),
            plugin,
        );
        Ok(Admission {
            _pending: pending,
            started,
            deadline: started + self.request_timeout,
            span,
            refusal: None,
        })
    }

    /// The last step of serving `call`, done at `answered`: the log line
    /// and the metrics see its outcome.
    pub(super) fn finish(
        &self,
        call: &Call<'_>,
        admission: Admission<'_>,
        outcome: Result<String, RpcError>,
        answered: Instant,
    ) -> Result<String, RpcError> {
        let elapsed = answered.saturating_duration_since(admission.started);
        {
            let _entered = admission.span.enter();
            let elapsed_us = elapsed.as_micros() as u64;
            match &outcome {
                Ok(_) => tracing::debug!(elapsed_us, "request answered"),
                Err(error) => tracing::debug!(elapsed_us, code = error.code, "request failed"),
            }
        }
        self.count(call, outcome.is_ok(), elapsed);
        outcome
    }

    /// Count an answered request in the per-method metrics.
    fn count(&self, call: &Call<'_>, ok: bool, elapsed: Duration) {
        match call.route {
            Some(route) => self.metrics.request(&route.counts, ok, elapsed),
            None => {
                let label = if builtin::is_builtin(call.requested) {
                    call.requested
                } else {
                    "unknown"
                };
                let counts = self.metrics.method(label);
                self.metrics.request(&counts, ok, elapsed);
            }
        }
    }

    /// Check the params against the method's schema, if it declares one,
    /// before any hook runs; a refusal is counted as the method's error.
    pub(super) fn check_params(&self, call: &Call<'_>) -> Result<(), RpcError> {
        let Some(route) = call.route else {
            return Ok(());
        };
        let Some(schema) = &route.params else {
            return Ok(());
        };
        let problems = match schema.check(call.params) {
            Ok(()) => return Ok(()),
            Err(problems) => problems,
        };
        self.metrics
            .request(&route.counts, false, call.received.elapsed());
        Err(invalid_params(&problems))
    }

    /// The error for a caller over its rate limit, if it is.
    fn rate_limited(&self, caller: &Caller) -> Option<RpcError> {
        let limiter = self.rate_limiter.as_ref()?;
        let allowed = match (caller.client_id(), caller.remote_addr) {
            (Some(client_id), _) => limiter.allow(client_id),
            (None, Some(address)) => limiter.allow(&address.ip().to_string()),
            (None, None) => true,
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

    /// The `before-request` hooks: the first refusal wins, and the
    /// admission keeps it.
    pub(super) async fn before_request(
        &self,
        table: &MethodTable,
        call: &Call<'_>,
        admission: &mut Admission<'_>,
    ) {
        let hooks = table.hooked(Hook::BeforeRequest);
        if hooks.is_empty() {
            return;
        }
        let deadline = admission.deadline;
        let refusal = async {
            for plugin in hooks {
                match plugin
                    .before_request(call.method, call.params, call.context(), deadline)
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(rejection)) => return Some(plugin_error(plugin, rejection)),
                    Err(error) => {
                        let export = "before-request";
                        return Some(self.call_failed(plugin, export, call.method, error));
                    }
                }
            }
            None
        };
        admission.refusal = refusal.instrument(admission.span.clone()).await;
    }

    /// The built-in method or the plugin's handler, to finish by `deadline`.
    pub(super) async fn respond(
        &self,
        table: &MethodTable,
        call: &Call<'_>,
        deadline: Instant,
    ) -> Result<String, RpcError> {
        let builtins = Builtins {
            broker: &self.broker,
            about: &self.about,
            table,
        };
        if let Some(outcome) =
            builtin::call(&builtins, call.requested, call.params, call.caller).await
        {
            return outcome;
        }
        let Some(route) = call.route else {
            return Err(RpcError::new(METHOD_NOT_FOUND, call.requested));
        };
        let handled = route
            .plugin
            .handle(&route.method, call.params, call.context(), deadline)
            .await;
        self.handled(route, handled)
    }

    /// What the client gets for the handler's outcome (or the call's
    /// failure) on `route`.
    pub(super) fn handled(
        &self,
        route: &Route,
        handled: Result<WitOutcome, CallError>,
    ) -> Result<String, RpcError> {
        let plugin = &route.plugin;
        match handled {
            Ok(Ok(_)) if route.notification => Ok("null".to_owned()),
            Ok(Ok(result)) => match wire::check_json(&result) {
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
    /// They get a deadline of their own, `request_timeout` from now, so that
    /// a request whose handler ran out of time is still seen by them: the
    /// answer can take up to twice `request_timeout` (documented).
    pub(super) async fn after_request(
        &self,
        table: &MethodTable,
        call: &Call<'_>,
        admission: &Admission<'_>,
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
        let deadline = Instant::now() + self.request_timeout;
        async {
            for plugin in hooks {
                let context = call.context();
                let done =
                    plugin.after_request(call.method, call.params, &outcome, context, deadline);
                if let Err(error) = done.await {
                    self.call_failed(plugin, "after-request", call.method, error);
                }
            }
        }
        .instrument(admission.span.clone())
        .await;
    }

    /// The OpenRPC document of what is served now.
    pub fn discover(&self) -> serde_json::Value {
        openrpc::document(&self.about, &self.registry.current())
    }

    /// Run the hooks that see `event` of a WebSocket client.
    pub async fn connection_event(&self, caller: &Caller, event: ConnectionEvent) {
        let Some(client_id) = caller.client_id() else {
            return;
        };
        let deadline = Instant::now() + self.request_timeout;
        for plugin in self.registry.current().hooked(event.hook()) {
            let called = plugin.connection_event(event, client_id, caller.context(None), deadline);
            if let Err(error) = called.await {
                self.call_failed(plugin, event.export(), client_id, error);
            }
        }
    }

    /// Log a failed plugin call in full and say what the client gets.
    pub(super) fn call_failed(
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
                        self.request_timeout
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

/// `-32602 Invalid params: <the first problem>`, with every problem in
/// `data` as `{"path", "message"}`.
fn invalid_params(problems: &[Problem]) -> RpcError {
    let first = problems
        .first()
        .map_or_else(String::new, |problem| match problem.path.as_str() {
            "" => problem.message.clone(),
            path => format!("{path}: {}", problem.message),
        });
    let mut error = RpcError::new(INVALID_PARAMS, first);
    let data = serde_json::to_string(problems).expect("problems serialise");
    error.data = RawValue::from_string(data).ok();
    error
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

/// Run `futures` together and collect their outputs in order. A batch's
/// calls usually all finish on their first poll; this runs them in one pass
/// without a task per call, and polls again only those still running when
/// one of them wakes (a call waiting for an instance, or a long one yielding
/// at an epoch tick).
pub(super) async fn join_in_order<F: Future + Unpin>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut calls: Vec<MaybeDone<F>> = futures.map(maybe_done).collect();
    poll_fn(|cx| {
        let mut all_done = true;
        for call in &mut calls {
            all_done &= Pin::new(call).poll(cx).is_ready();
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    calls
        .iter_mut()
        .map(|call| Pin::new(call).take_output().expect("every call is done"))
        .collect()
}

/// The transport as logs name it.
fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Http => "http",
        Transport::Websocket => "websocket",
        Transport::Background => "background",
    }
}
