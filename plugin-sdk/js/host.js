// Functions the host offers to plugins: logging, notifications, clients,
// topics, durable state, background work and configuration.
//
// Values are plain JavaScript values (anything JSON.stringify accepts). State
// lives in the host, per plugin name: every instance of a plugin sees the same
// values and they outlive any one instance. Module globals are a per-instance
// cache only: the host runs several instances of a plugin at once and replaces
// them at will.

import * as wit from 'rpcnode:plugin/host@0.3.1';

import { dump, load } from './json.js';

/** The host refused a call (an unknown client, a full spawn queue, …). */
export class HostError extends Error {
  constructor(message) {
    super(message);
    this.name = 'HostError';
  }
}

/** Call a host function whose WIT result is `result<T, string>`. */
function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (error) {
    throw new HostError(String(error?.payload ?? error));
  }
}

/** Write `message` to the host log at `level` ('trace', 'debug', 'info', 'warn' or 'error'). */
export function log(level, message) {
  wit.log(level, message);
}

/**
 * The call `handle-batch` is running, `{ requestId }`: the host's
 * `call-context` has no request id during a batch, each call carries its own.
 */
let batchCall;

/** Run `call` as the batch call with request id `requestId` (JSON text). For the SDK. */
export function runAsBatchCall(requestId, call) {
  batchCall = { requestId };
  try {
    return call();
  } finally {
    batchCall = undefined;
  }
}

/** The batch call in progress, if any. For the SDK. */
export function currentBatchCall() {
  return batchCall;
}

/**
 * Who made the call in progress: `{ requestId, transport, clientId, remoteAddr }`,
 * `requestId` as JSON text. `batch` is the batch call it was, when asked
 * after the handler awaited something.
 */
export function callContext(batch = batchCall) {
  const context = wit.callContext();
  return batch === undefined ? context : { ...context, requestId: batch.requestId };
}

/** The headers of the call in progress as [name, value] pairs, lowercase names. */
export function requestHeaders() {
  return wit.requestHeaders();
}

/** The first value of header `name` (case-insensitive) of the call in progress, or undefined. */
export function requestHeader(name) {
  return wit.requestHeader(name);
}

/** Send notification `method` to every WebSocket client except those in `exclude`; returns how many it was queued for. */
export function broadcast(method, params, exclude = []) {
  return call(wit.broadcastNotification, method, dump(params), exclude);
}

/** Send notification `method` to one WebSocket client; HostError when it is unknown or gone. */
export function notify(clientId, method, params) {
  call(wit.sendNotification, clientId, method, dump(params));
}

/** The ids of the connected WebSocket clients. */
export function clients() {
  return wit.clients();
}

/** How many WebSocket clients are connected. */
export function clientCount() {
  return wit.clientCount();
}

/** Metadata `key` of a connected client, or `fallback`. */
export function clientGet(clientId, key, fallback) {
  return load(wit.clientGet(clientId, key), fallback);
}

/** Set metadata `key` of a connected client (dropped when it disconnects). */
export function clientSet(clientId, key, value) {
  call(wit.clientSet, clientId, key, JSON.stringify(value));
}

/** Subscribe a connected client to `topic`. */
export function subscribe(clientId, topic) {
  call(wit.subscribe, clientId, topic);
}

/** Unsubscribe a client from `topic`; true if it was subscribed. */
export function unsubscribe(clientId, topic) {
  return wit.unsubscribe(clientId, topic);
}

/** Send notification `method` to the subscribers of `topic`; returns how many it was queued for. */
export function publish(topic, method, params) {
  return call(wit.publish, topic, method, dump(params));
}

/** The ids of the clients subscribed to `topic`. */
export function subscribers(topic) {
  return wit.subscribers(topic);
}

/** Call this plugin's own `method` after `delayMs` milliseconds, with no client attached. */
export function spawn(method, params, delayMs = 0) {
  call(wit.spawn, method, dump(params), delayMs);
}

/** A value from this plugin's durable state, or `fallback`. */
export function stateGet(key, fallback) {
  return load(wit.stateGet(key), fallback);
}

/** Store `value` in this plugin's durable state. */
export function stateSet(key, value) {
  call(wit.stateSet, key, JSON.stringify(value));
}

/** Remove `key` from this plugin's durable state; true if it existed. */
export function stateDelete(key) {
  return wit.stateDelete(key);
}

/** Atomically add `delta` to the integer at `key` (missing counts as 0); returns the new value. */
export function stateIncrement(key, delta = 1) {
  return Number(call(wit.stateIncrement, key, BigInt(delta)));
}

/** Value `key` of this plugin's `[config]` table, or `fallback`. */
export function config(key, fallback) {
  return load(wit.configGet(key), fallback);
}
