// Write rpcnode JSON-RPC plugins in plain JavaScript.
//
// A plugin is a `Plugin` with methods plus one export line:
//
//   import { Plugin, InvalidParams } from 'rpcnode-sdk';
//
//   const plugin = new Plugin('calculator', '0.1.0');
//   plugin.method('add', { params: ['a', 'b'] }, ({ a, b }) => ({ sum: a + b }));
//   export const handler = plugin.handler();
//
// A handler receives the params and the call's `Context`. Declaring
// `params: [names…]` makes positional params (`[1, 2]`) arrive named like
// `{"a": 1, "b": 2}` and makes each name required (`'b?'` makes `b` optional). Throw `RpcError` (or
// `InvalidParams`) to answer with an error; any other exception answers
// -32603 and is written to the host log. Handlers and hooks may be `async` (or
// return a Promise): the call waits for it, timers included, within the host's
// request timeout.

import { callContext, currentBatchCall, requestHeader, requestHeaders, runAsBatchCall } from './host.js';
import { dump, load } from './json.js';

const INVALID_PARAMS = -32602;
const INTERNAL_ERROR = -32603;
const WEBSOCKET_REQUIRED = -32001;

/** A JSON-RPC error object: throw it from a handler or a hook. */
export class RpcError extends Error {
  constructor(code, message, data) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.data = data;
  }

  toWit() {
    return { code: this.code, message: this.message, data: dump(this.data) };
  }
}

/** The params do not fit the method (-32602); the client sees "Invalid params: <message>". */
export class InvalidParams extends RpcError {
  constructor(message, data) {
    super(INVALID_PARAMS, message, data);
    this.name = 'InvalidParams';
  }
}

/**
 * Who made a call, and how: `transport` is 'http', 'websocket' or
 * 'background'; `clientId` is set for calls over WebSocket; `headers` maps
 * lowercase names to values (of the HTTP request or the WebSocket handshake).
 * Asked of the host on first use.
 */
export class Context {
  constructor(method) {
    this.method = method;
    this.batchCall = currentBatchCall();
  }

  /** The host's `request-context` record of the call in progress. */
  get raw() {
    this.cachedRaw ??= callContext(this.batchCall);
    return this.cachedRaw;
  }

  get transport() {
    return this.raw.transport;
  }

  get clientId() {
    return this.raw.clientId;
  }

  get remoteAddr() {
    return this.raw.remoteAddr;
  }

  /** The request id (absent for notifications), parsed on first use. */
  get requestId() {
    return load(this.raw.requestId);
  }

  /**
   * The headers of the call in progress as an object with lowercase names
   * (a repeated header's first value), asked of the host on first use.
   */
  get headers() {
    this.cachedHeaders ??= Object.fromEntries(requestHeaders().reverse());
    return this.cachedHeaders;
  }

  /** The first value of header `name` (case-insensitive) of the call in progress, or undefined. */
  header(name) {
    return requestHeader(name);
  }

  /** The caller's WebSocket client id, or a -32001 error saying the method needs one. */
  requireClient() {
    if (this.clientId === undefined) {
      throw new RpcError(WEBSOCKET_REQUIRED, `${this.method} needs a WebSocket connection`);
    }
    return this.clientId;
  }
}

/**
 * How a method's params bind: `declared` lists the names in positional order,
 * `name?` marking an optional one. Parsed once, when the method is registered.
 */
function paramsBinder(declared) {
  if (declared === undefined) {
    return (params) => params ?? {};
  }
  const names = declared.map((name) => name.replace(/\?$/, ''));
  const required = names.filter((name, index) => !declared[index].endsWith('?'));
  return (params) => {
    let named = params ?? {};
    if (Array.isArray(named)) {
      if (named.length > names.length) {
        throw new InvalidParams(`expected at most ${names.length} parameters, got ${named.length}`);
      }
      const positional = named;
      named = {};
      for (let index = 0; index < positional.length; index++) {
        named[names[index]] = positional[index];
      }
    }
    for (const name of required) {
      if (!(name in named)) {
        throw new InvalidParams(`missing parameter \`${name}\``);
      }
    }
    return named;
  };
}

/** The thrown value that makes a component export return `err(error)`. */
function witError(error) {
  const thrown = new Error(error.message);
  thrown.payload = error;
  return thrown;
}

/** Whether `value` is a Promise (or any thenable) rather than a value. */
function isThenable(value) {
  return typeof value?.then === 'function';
}

/** What a handler or hook threw, as the error the host answers with: RpcError as it is, anything else logged and -32603. */
function answerFor(error) {
  if (error instanceof RpcError) {
    return witError(error.toWit());
  }
  console.error(error?.stack ?? String(error));
  return witError({ code: INTERNAL_ERROR, message: `${error?.name ?? 'Error'}: ${error?.message ?? error}` });
}

/**
 * Run a handler or hook and hand its value to `done`. A Promise is awaited:
 * the export then returns a Promise, and componentize-js runs the event loop
 * until it settles. A synchronous value takes no detour through it.
 */
function guarded(call, done) {
  let value;
  try {
    value = call();
  } catch (error) {
    throw answerFor(error);
  }
  if (isThenable(value)) {
    return Promise.resolve(value).then(done, (error) => {
      throw answerFor(error);
    });
  }
  return done(value);
}

/** Run a hook that has no way to answer: failures (and rejections) go to the host log. */
function quietly(call) {
  const log = (error) => console.error(error?.stack ?? String(error));
  try {
    const value = call();
    if (isThenable(value)) {
      return Promise.resolve(value).then(() => undefined, log);
    }
  } catch (error) {
    log(error);
  }
  return undefined;
}

/** The params schema `names` (as `params` lists them) stand for, if any. */
function schemaOf(names) {
  if (names === undefined) {
    return undefined;
  }
  const properties = {};
  const required = [];
  for (const spec of names) {
    const name = spec.endsWith('?') ? spec.slice(0, -1) : spec;
    properties[name] = {};
    if (name === spec) {
      required.push(name);
    }
  }
  return required.length > 0 ? { type: 'object', properties, required } : { type: 'object', properties };
}

/** A plugin's name, version, methods, hooks and timers. */
export class Plugin {
  constructor(name, version) {
    this.name = name;
    this.version = version;
    this.methods = new Map();
    this.timers = [];
    this.hooks = {};
  }

  /**
   * Register `handler(params, ctx)` as method `name`. Options: `params` (names
   * of the params, in positional order; `'name?'` for an optional one), `summary`, `description`,
   * `paramsSchema`, `resultSchema`, `notification` (no result: callers with
   * an id get null) and `internal` (only the plugin's own background work may
   * call it). Without `paramsSchema`, the `params` names are published as the
   * schema: an object with those properties, the ones without `?` required.
   */
  method(name, options, handler) {
    if (handler === undefined) {
      [options, handler] = [{}, options];
    }
    if (this.methods.has(name)) {
      throw new Error(`plugin ${this.name}: method ${name} is declared twice`);
    }
    const info = {
      name,
      summary: options.summary,
      description: options.description,
      paramsSchema: dump(options.paramsSchema ?? schemaOf(options.params)),
      resultSchema: dump(options.resultSchema),
      notification: options.notification ?? false,
      internal: options.internal ?? false,
    };
    this.methods.set(name, { info, bind: paramsBinder(options.params), handler });
    return this;
  }

  /** Have the host call `method` every `everyMs` milliseconds, with no client and no params. */
  timer(method, everyMs) {
    this.timers.push({ method, everyMs });
    return this;
  }

  /** `hook(method, params, ctx)`: throw RpcError to reject a request before its handler runs. */
  beforeRequest(hook) {
    this.hooks['before-request'] = hook;
    return this;
  }

  /** `hook(method, params, ctx, result, error)`: sees every request's outcome. */
  afterRequest(hook) {
    this.hooks['after-request'] = hook;
    return this;
  }

  /** `hook(clientId, ctx)`: a WebSocket client connected. */
  onConnect(hook) {
    this.hooks['on-connect'] = hook;
    return this;
  }

  /** `hook(clientId)`: a WebSocket client went away. */
  onDisconnect(hook) {
    this.hooks['on-disconnect'] = hook;
    return this;
  }

  /** The component export: `export const handler = plugin.handler();` */
  handler() {
    const plugin = this;
    const hooks = this.hooks;
    return {
      describe() {
        return {
          name: plugin.name,
          version: plugin.version,
          methods: [...plugin.methods.values()].map((method) => method.info),
          hooks: Object.keys(hooks),
          timers: plugin.timers,
        };
      },
      handle(method, params) {
        const found = plugin.methods.get(method);
        if (found === undefined) {
          throw witError({ code: -32601, message: `no method \`${method}\`` });
        }
        const context = new Context(method);
        return guarded(
          () => found.handler(found.bind(load(params)), context),
          (result) => (found.info.notification ? 'null' : JSON.stringify(result ?? null)),
        );
      },
      beforeRequest(method, params) {
        const hook = hooks['before-request'];
        if (hook === undefined) {
          return undefined;
        }
        return guarded(
          () => hook(method, load(params), new Context(method)),
          () => undefined,
        );
      },
      afterRequest(method, params, outcome) {
        const hook = hooks['after-request'];
        if (hook === undefined) {
          return;
        }
        const [result, error] =
          outcome.tag === 'ok'
            ? [load(outcome.val), undefined]
            : [undefined, new RpcError(outcome.val.code, outcome.val.message, load(outcome.val.data))];
        return quietly(() => hook(method, load(params), new Context(method), result, error));
      },
      onConnect(clientId) {
        const hook = hooks['on-connect'];
        return hook === undefined ? undefined : quietly(() => hook(clientId, new Context('')));
      },
      onDisconnect(clientId) {
        const hook = hooks['on-disconnect'];
        return hook === undefined ? undefined : quietly(() => hook(clientId));
      },
    };
  }
}

/**
 * The `batch-handler` export for a `handler` export: each call answered as
 * `handler.handle` answers it, one at a time, in order. The plugin build adds
 * it to an entry module that does not export `batchHandler`.
 */
export function batchHandlerFor(handler) {
  return {
    handleBatch(calls) {
      const outcomes = [];
      for (let index = 0; index < calls.length; index += 1) {
        const outcome = settle(handler, calls[index]);
        if (isThenable(outcome)) {
          return settleRest(handler, calls.slice(index + 1), outcome, outcomes);
        }
        outcomes.push(outcome);
      }
      return outcomes;
    },
  };
}

/** One batch call's outcome as the WIT `result`, or a Promise of it. */
function settle(handler, call) {
  const ok = (val) => ({ tag: 'ok', val });
  const err = (error) => ({
    tag: 'err',
    val: error?.payload ?? { code: INTERNAL_ERROR, message: String(error) },
  });
  try {
    const value = runAsBatchCall(call.requestId, () => handler.handle(call.method, call.params));
    return isThenable(value) ? Promise.resolve(value).then(ok, err) : ok(value);
  } catch (error) {
    return err(error);
  }
}

/** The rest of a batch once a call answered with a Promise. */
async function settleRest(handler, calls, pending, outcomes) {
  outcomes.push(await pending);
  for (const call of calls) {
    outcomes.push(await settle(handler, call));
  }
  return outcomes;
}

export * as host from './host.js';
export { HostError } from './host.js';
