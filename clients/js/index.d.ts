// Types of rpcnode-client (index.js).

export class RpcError extends Error {
  code: number;
  data?: unknown;
}
export class TimeoutError extends Error {}
export class ConnectionError extends Error {}

export interface Options {
  /** Milliseconds a call may wait for its answer (default 30000). */
  timeout?: number;
  /** Milliseconds before the first reconnect (default 250), doubled up to maxBackoff. */
  minBackoff?: number;
  /** The longest wait between reconnects, in milliseconds (default 30000). */
  maxBackoff?: number;
  /** A WebSocket implementation, where there is no global one. */
  WebSocket?: unknown;
}

export interface Notification {
  jsonrpc: '2.0';
  method: string;
  params?: unknown;
  position?: { stream: string; epoch: string; offset: number };
}

export interface Events {
  connected: { client_id: string; resumed: boolean };
  disconnected: { code: number; reason: string };
  not_recovered: { streams: string[]; reason: string };
  error: unknown;
}

export class RpcClient {
  constructor(url: string, options?: Options);
  clientId: string | null;
  connect(): Promise<void>;
  call<T = unknown>(method: string, params?: unknown, options?: { timeout?: number }): Promise<T>;
  notify(method: string, params?: unknown): Promise<void>;
  batch(calls: { method: string; params?: unknown }[], options?: { timeout?: number }): Promise<(unknown | RpcError)[]>;
  subscribe(topics: string[]): Promise<string[]>;
  unsubscribe(topics: string[]): Promise<string[]>;
  on(method: string, handler: (params: unknown, message: Notification) => void): () => void;
  onTopic(topic: string, handler: (message: Notification) => void): () => void;
  onEvent<K extends keyof Events>(event: K, handler: (detail: Events[K]) => void): () => void;
  close(): Promise<void>;
}
