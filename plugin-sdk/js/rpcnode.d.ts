// Types of the rpcnode JavaScript SDK (rpcnode.js and host.js), for plugins
// written in TypeScript. `rpcnode new NAME --lang ts` maps the import
// 'rpcnode-sdk' to this file in the project's tsconfig.json.

/** Any value JSON can carry. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What a handler may return: anything JSON.stringify accepts. */
export type Result = unknown;

/** A JSON-RPC error object: throw it from a handler or a hook. */
export class RpcError extends Error {
  constructor(code: number, message: string, data?: unknown);
  code: number;
  data: unknown;
}

/** The params do not fit the method (-32602); the client sees "Invalid params: <message>". */
export class InvalidParams extends RpcError {
  constructor(message: string, data?: unknown);
}

/** The host refused a call (an unknown client, a full spawn queue, …). */
export class HostError extends Error {
  constructor(message: string);
}

/** How a call reached the plugin. */
export type Transport = 'http' | 'websocket' | 'background';

/** Who made a call, and how. */
export class Context {
  readonly method: string;
  readonly transport: Transport;
  /** Set for calls over WebSocket. */
  readonly clientId: string | undefined;
  readonly remoteAddr: string | undefined;
  /** The request id; absent for notifications. */
  readonly requestId: Json | undefined;
  /** Lowercase header names to values (a repeated header's first value). */
  readonly headers: Record<string, string>;
  /** The first value of header `name` (case-insensitive), or undefined. */
  header(name: string): string | undefined;
  /** The caller's WebSocket client id, or a -32001 error saying the method needs one. */
  requireClient(): string;
}

/** Options of a method; see docs/plugins.md. */
export interface MethodOptions {
  /** Names of the params in positional order; `'name?'` marks an optional one. */
  params?: string[];
  summary?: string;
  description?: string;
  /** A JSON Schema the host checks params against before any hook or handler runs. */
  paramsSchema?: Json;
  resultSchema?: Json;
  /** No result: callers with an id get null. */
  notification?: boolean;
  /** Only the plugin's own background work may call it. */
  internal?: boolean;
}

/** A method handler: a value, or a Promise of one. */
export type Handler<P = any> = (params: P, ctx: Context) => Result | Promise<Result>;

/** A hook's value is ignored; a Promise is awaited. */
export type HookResult = void | Promise<void>;

/** A plugin's name, version, methods, hooks and timers. */
export class Plugin {
  constructor(name: string, version: string);
  readonly name: string;
  readonly version: string;
  method<P = any>(name: string, options: MethodOptions, handler: Handler<P>): this;
  method<P = any>(name: string, handler: Handler<P>): this;
  /** Have the host call `method` every `everyMs` milliseconds, with no client and no params. */
  timer(method: string, everyMs: number): this;
  /** Throw RpcError to reject a request before its handler runs. */
  beforeRequest(hook: (method: string, params: Json | undefined, ctx: Context) => HookResult): this;
  /** Sees every request's outcome. */
  afterRequest(
    hook: (
      method: string,
      params: Json | undefined,
      ctx: Context,
      result: Json | undefined,
      error: RpcError | undefined,
    ) => HookResult,
  ): this;
  /** A WebSocket client connected. */
  onConnect(hook: (clientId: string, ctx: Context) => HookResult): this;
  /** A WebSocket client went away. */
  onDisconnect(hook: (clientId: string) => HookResult): this;
  /** The component export: `export const handler = plugin.handler();` */
  handler(): object;
}

/**
 * The `batch-handler` export for a `handler` export: each call answered as
 * `handler.handle` answers it, one at a time, in order. `rpcnode build` adds
 * it to an entry module that does not export `batchHandler`.
 */
export function batchHandlerFor(handler: object): object;

/** Functions the host offers to plugins; values are anything JSON.stringify accepts. */
export namespace host {
  type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  interface CallContext {
    requestId: string | undefined;
    transport: Transport;
    clientId: string | undefined;
    remoteAddr: string | undefined;
  }
  function log(level: LogLevel, message: string): void;
  function callContext(): CallContext;
  function requestHeaders(): [string, string][];
  function requestHeader(name: string): string | undefined;
  /** Returns how many clients it was queued for. */
  function broadcast(method: string, params?: unknown, exclude?: string[]): number;
  function notify(clientId: string, method: string, params?: unknown): void;
  function clients(): string[];
  function clientCount(): number;
  function clientGet<T = Json>(clientId: string, key: string, fallback?: T): T;
  function clientSet(clientId: string, key: string, value: unknown): void;
  function subscribe(clientId: string, topic: string): void;
  /** True if the client was subscribed. */
  function unsubscribe(clientId: string, topic: string): boolean;
  /** Returns how many clients it was queued for. */
  function publish(topic: string, method: string, params?: unknown): number;
  function subscribers(topic: string): string[];
  function spawn(method: string, params?: unknown, delayMs?: number): void;
  function stateGet<T = Json>(key: string, fallback?: T): T;
  function stateSet(key: string, value: unknown): void;
  /** True if the key existed. */
  function stateDelete(key: string): boolean;
  /** Returns the new value. */
  function stateIncrement(key: string, delta?: number): number;
  function config<T = Json>(key: string, fallback?: T): T;
}

// What the plugin runtime (StarlingMonkey) offers every module.
declare global {
  interface Console {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
    debug(...data: unknown[]): void;
  }
  const console: Console;
  function setTimeout(callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): number;
  function clearTimeout(id: number | undefined): void;
  function setInterval(callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): number;
  function clearInterval(id: number | undefined): void;
  function queueMicrotask(callback: () => void): void;
}
