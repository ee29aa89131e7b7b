//! A JSON-RPC batch. Its requests go through the params check, the rate
//! limit and the `before-request` hooks together; then the calls bound for
//! one plugin that exports `handle-batch` go to it in one entry, or a few
//! if its calls are slow (an entry into a guest costs more than a small
//! handler's own work), and the rest are answered one by one; then the
//! `after-request` hooks see every outcome. Answers keep the order of the
//! requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tracing::Instrument as _;

use super::caller::Caller;
use super::dispatch::{Admission, Call, Dispatcher, answer, join_in_order};
use super::wire::{self, Item, Request, RpcError};
use crate::plugin::{BatchCall, Hook, LoadedPlugin, MethodTable};

/// How many calls of a batch go in one entry into a plugin whose calls are
/// slow. The calls of an entry run one after another, while entries run
/// side by side on the plugin's instances: a batch of calls that wait (on a
/// timer, on the store) takes at most this many times as long as the calls
/// one by one would. It also bounds how long any entry may run: this many
/// request timeouts.
const CALLS_PER_ENTRY: usize = 16;

/// A plugin whose requests typically spend longer than this in the guest
/// (or that has answered none yet) gets a batch's calls in entries of
/// CALLS_PER_ENTRY; a quicker one gets them in one entry. Each entry costs
/// the host a few microseconds besides its calls (a lease, a fiber, another
/// instance's memory in the cache), so splitting pays only where calls wait
/// for much longer.
const SPLIT_ABOVE: Duration = Duration::from_micros(100);

/// Outcomes by the index of their request in the batch.
type Outcomes = Vec<(usize, Result<String, RpcError>)>;
/// An admitted call waiting for its handler, with its index in the batch.
type Waiting<'c, 'a> = (usize, &'c Call<'a>, &'c Admission<'a>);

/// The answers to `items`, in order; `None` where nothing is sent back.
pub async fn answer_all(
    dispatcher: &Dispatcher,
    table: &MethodTable,
    items: Vec<Item<'_>>,
    caller: &Caller,
) -> Vec<Option<String>> {
    let mut answers = vec![None; items.len()];
    let mut requests: Vec<(usize, Request<'_>)> = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Ok(request) => requests.push((index, request)),
            Err(rejected) => answers[index] = Some(wire::failure(rejected.id, &rejected.error)),
        }
    }
    let received = Instant::now();
    let calls: Vec<(usize, Call<'_>)> = requests
        .iter()
        .map(|(index, request)| {
            let params = request.params.map(RawValue::get);
            let call = Call::new(table, &request.method, params, request.id, caller, received);
            (*index, call)
        })
        .collect();

    // The params check, the rate limit and the `before-request` hooks.
    let mut checked = Vec::with_capacity(calls.len());
    for (index, call) in &calls {
        match dispatcher.check_params(call) {
            Ok(()) => checked.push((*index, call)),
            Err(invalid) => answers[*index] = dispatcher.refuse_params(call, &invalid),
        }
    }
    let mut admitted: Vec<(usize, &Call<'_>, Admission<'_>)> = Vec::new();
    for (index, call) in checked {
        match dispatcher.admit(call) {
            Ok(admission) => admitted.push((index, call, admission)),
            Err(limited) => answers[index] = answer(call, Err(limited)),
        }
    }
    // Without hooks, no future per call.
    if !table.hooked(Hook::BeforeRequest).is_empty() {
        let hooks = admitted.iter_mut().map(|(_, call, admission)| {
            Box::pin(dispatcher.before_request(table, call, admission))
        });
        join_in_order(hooks).await;
    }

    // The handlers: `handle-batch` entries for the plugins that take
    // batches, `handle` (or a built-in) for each other call.
    let mut outcomes: Vec<Option<Result<String, RpcError>>> = vec![None; answers.len()];
    let mut groups: Vec<(&Arc<LoadedPlugin>, Vec<Waiting<'_, '_>>)> = Vec::new();
    let mut singles = Vec::new();
    for (index, call, admission) in &mut admitted {
        if let Some(refused) = admission.refusal.take() {
            outcomes[*index] = Some(Err(refused));
            continue;
        }
        let route = call.route().filter(|route| route.plugin.handles_batches());
        match route {
            Some(route) => match groups
                .iter_mut()
                .find(|(plugin, _)| Arc::ptr_eq(plugin, &route.plugin))
            {
                Some((_, group)) => group.push((*index, *call, admission)),
                None => groups.push((&route.plugin, vec![(*index, *call, admission)])),
            },
            None => singles.push((*index, *call, &*admission)),
        }
    }
    // A call left alone goes through `handle`, where `call-context` has its
    // id.
    let mut entries = Vec::new();
    for (plugin, group) in &groups {
        let quick = plugin
            .calls
            .typical()
            .is_some_and(|typical| typical <= SPLIT_ABOVE);
        let size = if quick { group.len() } else { CALLS_PER_ENTRY };
        for chunk in group.chunks(size) {
            match chunk {
                [single] => singles.push(*single),
                _ => entries.push((*plugin, chunk)),
            }
        }
    }
    let mut work: Vec<Pin<Box<dyn Future<Output = Outcomes> + Send + '_>>> = Vec::new();
    for (index, call, admission) in singles {
        work.push(Box::pin(async move {
            let outcome = dispatcher
                .respond(table, call, admission.deadline)
                .instrument(admission.span.clone())
                .await;
            vec![(index, outcome)]
        }));
    }
    for (plugin, calls) in entries {
        work.push(Box::pin(call_plugin(dispatcher, plugin, calls, caller)));
    }
    for (index, outcome) in join_in_order(work.into_iter()).await.into_iter().flatten() {
        outcomes[index] = Some(outcome);
    }

    // The `after-request` hooks, the logs and the metrics.
    let outcomes: Vec<_> = admitted
        .iter()
        .map(|(index, _, _)| {
            outcomes[*index]
                .take()
                .expect("every admitted call has an outcome")
        })
        .collect();
    if !table.hooked(Hook::AfterRequest).is_empty() {
        let hooks = admitted
            .iter()
            .zip(&outcomes)
            .map(|((_, call, admission), outcome)| {
                Box::pin(dispatcher.after_request(table, call, admission, outcome))
            });
        join_in_order(hooks).await;
    }
    // Every call of a batch is answered with the batch.
    let answered = Instant::now();
    for ((index, call, admission), outcome) in admitted.into_iter().zip(outcomes) {
        let outcome = dispatcher.finish(call, admission, outcome, answered);
        answers[index] = answer(call, outcome);
    }
    answers
}

/// Call `plugin`'s `handle-batch` with one entry's calls. A fault or
/// timeout fails each call of the entry.
async fn call_plugin(
    dispatcher: &Dispatcher,
    plugin: &LoadedPlugin,
    group: &[Waiting<'_, '_>],
    caller: &Caller,
) -> Outcomes {
    // The calls of an entry run one after another: each gets its own
    // request timeout after the earliest deadline, up to CALLS_PER_ENTRY
    // of them, so that one slow call among many quick ones cannot hold an
    // instance for a thousand timeouts.
    let earliest = group
        .iter()
        .map(|(_, _, admission)| admission.deadline)
        .min()
        .expect("an entry has calls");
    let extra = group.len().min(CALLS_PER_ENTRY) - 1;
    let deadline = earliest + dispatcher.request_timeout() * extra as u32;
    let calls: Vec<BatchCall<'_>> = group
        .iter()
        .map(|(_, call, _)| {
            let route = call.route().expect("grouped calls have a route");
            BatchCall {
                method: &route.method,
                params: call.params(),
                request_id: call.id().map(RawValue::get),
            }
        })
        .collect();
    let span = tracing::debug_span!("batch entry", plugin = plugin.name(), calls = calls.len());
    match plugin
        .handle_batch(&calls, caller.context(None), deadline)
        .instrument(span)
        .await
    {
        Ok(outcomes) => group
            .iter()
            .zip(outcomes)
            .map(|((index, call, _), outcome)| {
                let route = call.route().expect("grouped calls have a route");
                (*index, dispatcher.handled(route, Ok(outcome)))
            })
            .collect(),
        Err(error) => {
            let subject = format!("{} calls, the first {}", calls.len(), calls[0].method);
            let error = dispatcher.call_failed(plugin, "handle-batch", &subject, error);
            group
                .iter()
                .map(|(index, _, _)| (*index, Err(error.clone())))
                .collect()
        }
    }
}
