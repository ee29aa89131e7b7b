// rpcnode's JavaScript client: JSON-RPC 2.0 over one WebSocket in a
// resumable session. It reconnects with backoff and jitter and resumes, so
// notifications missed while disconnected arrive once and in order; when the
// node's history cannot cover a gap it says so with a `not_recovered` event.
// Browser and Node.js (22+, or 20 with --experimental-websocket); no
// dependencies. See docs/clients.md.

/** A JSON-RPC error answer: `code`, `message` and `data` as the node sent them. */
export class RpcError extends Error {
  constructor({ code, message, data }) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.data = data;
  }
}

/** A call not answered within its timeout. */
export class TimeoutError extends Error {
  constructor(method, ms) {
    super(`${method}: no answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** A call that could not be answered: the connection dropped, or the client was closed. */
export class ConnectionError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ConnectionError';
  }
}

const DEFAULTS = {
  timeout: 30_000, // ms per call
  minBackoff: 250, // ms before the first reconnect
  maxBackoff: 30_000, // ms, the longest wait between reconnects
  WebSocket: globalThis.WebSocket,
};

export class RpcClient {
  /**
   * @param {string} url  the node's WebSocket endpoint, `ws(s)://HOST:PORT/ws`
   * @param {object} [options]  `timeout`, `minBackoff`, `maxBackoff` (ms),
   *   `WebSocket` (an implementation, where there is no global one)
   */
  constructor(url, options = {}) {
    this.options = { ...DEFAULTS, ...options };
    if (typeof this.options.WebSocket !== 'function') {
      throw new Error('no WebSocket: use Node.js 22+, pass --experimental-websocket to Node.js 20, or give options.WebSocket');
    }
    const endpoint = new URL(url);
    endpoint.search = 'session';
    this.url = endpoint.toString();
    this.clientId = null;
    this.session = null; // { client_id, token }
    this.positions = new Map(); // stream → its last position
    this.topics = new Set(); // what to subscribe a new session to
    this.pending = new Map(); // id → { resolve, reject, timer, method }
    this.handlers = new Map(); // 'method:NAME' | 'topic:NAME' | 'event:NAME' → Set of functions
    this.nextId = 1;
    this.ws = null;
    this.closed = false;
    this.backoff = this.options.minBackoff;
    this.whenOpen = deferred(); // settled while the session is open
  }

  /** Open the session (reconnects are automatic after that); resolves once it is open. */
  connect() {
    this.closed = false;
    if (!this.ws && !this.reconnectTimer) this.open();
    return this.whenOpen.promise;
  }

  /** Call `method`; resolves with its result, rejects with RpcError, TimeoutError or ConnectionError. */
  async call(method, params, { timeout = this.options.timeout } = {}) {
    const [answer] = await this.send([{ method, params }], timeout);
    if (answer.error) throw new RpcError(answer.error);
    return answer.result;
  }

  /** Send a notification: no answer. */
  async notify(method, params) {
    await this.connect();
    this.write(request(method, params));
  }

  /**
   * Send `calls` ([{method, params}]) as one batch; resolves with one entry
   * per call, in order: its result, or an RpcError.
   */
  async batch(calls, { timeout = this.options.timeout } = {}) {
    const answers = await this.send(calls, timeout);
    return answers.map((answer) => (answer.error ? new RpcError(answer.error) : answer.result));
  }

  /** Subscribe to `topics`; kept across reconnects. Resolves with the topics subscribed. */
  async subscribe(topics) {
    const result = await this.call('rpc.subscribe', { topics });
    for (const topic of topics) this.topics.add(topic);
    this.remember(result.streams);
    return result.subscribed;
  }

  /** Unsubscribe from `topics`. Resolves with the topics that were subscribed. */
  async unsubscribe(topics) {
    for (const topic of topics) this.topics.delete(topic);
    return (await this.call('rpc.unsubscribe', { topics })).unsubscribed;
  }

  /** Call `handler(params, message)` for each notification of `method`. Returns a function that removes it. */
  on(method, handler) {
    return this.listen(`method:${method}`, handler);
  }

  /** Call `handler(message)` for each notification published to `topic`. Returns a function that removes it. */
  onTopic(topic, handler) {
    return this.listen(`topic:${topic}`, handler);
  }

  /**
   * Call `handler(detail)` on a client event: `connected` ({client_id,
   * resumed}), `disconnected` ({code, reason}), `not_recovered` ({streams}:
   * notifications of these streams were lost; refresh their data), `error`.
   */
  onEvent(event, handler) {
    return this.listen(`event:${event}`, handler);
  }

  /** Close the connection and end the session; pending calls reject with ConnectionError. */
  async close() {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.failPending('the client was closed');
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) {
      await new Promise((resolve) => {
        ws.addEventListener('close', resolve);
        ws.close(1000);
      });
    }
  }

  // --- inside ---

  async send(calls, timeout) {
    // Calls made while reconnecting wait for the session, within their timeout.
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(calls[0]?.method ?? 'batch', timeout)), timeout);
    });
    await Promise.race([this.connect(), late]).finally(() => clearTimeout(timer));
    const messages = calls.map(({ method, params }) => ({ ...request(method, params), id: this.nextId++ }));
    const answers = messages.map(({ id, method }) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new TimeoutError(method, timeout));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer, method });
    }));
    this.write(messages.length === 1 ? messages[0] : messages);
    return Promise.all(answers);
  }

  write(message) {
    if (!this.ws || this.ws.readyState !== 1 || !this.session) {
      throw new ConnectionError('not connected');
    }
    this.ws.send(JSON.stringify(message));
  }

  listen(key, handler) {
    if (!this.handlers.has(key)) this.handlers.set(key, new Set());
    this.handlers.get(key).add(handler);
    return () => this.handlers.get(key).delete(handler);
  }

  emit(key, ...args) {
    for (const handler of this.handlers.get(key) ?? []) {
      try {
        handler(...args);
      } catch (error) {
        if (key !== 'event:error') this.emit('event:error', error);
      }
    }
  }

  open() {
    this.reconnectTimer = null;
    const ws = new this.options.WebSocket(this.url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      const params = this.session ? { ...this.session, positions: [...this.positions.values()] } : {};
      ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'rpc.session', params, id: 'session' }));
    };
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => this.lost(ws, event);
    // A socket that never opened may report only an error (Node.js 20).
    ws.onerror = () => {
      if (!opened) this.lost(ws, { code: 1006, reason: 'connection failed' });
    };
  }

  lost(ws, { code, reason }) {
    if (this.ws !== ws) return;
    this.ws = null;
    const wasOpen = this.whenOpen.settled;
    if (wasOpen) this.whenOpen = deferred();
    this.failPending('the connection closed before the answer came');
    if (wasOpen) this.emit('event:disconnected', { code, reason });
    if (this.closed) return;
    const wait = this.backoff * (0.8 + 0.4 * Math.random());
    this.backoff = Math.min(this.backoff * 2, this.options.maxBackoff);
    this.reconnectTimer = setTimeout(() => this.open(), wait);
  }

  receive(message) {
    if (Array.isArray(message)) {
      for (const answer of message) this.answer(answer);
    } else if (message.id === 'session') {
      this.opened(message);
    } else if (message.id !== undefined) {
      this.answer(message);
    } else if (message.method) {
      if (message.position) this.positions.set(message.position.stream, message.position);
      this.emit(`method:${message.method}`, message.params, message);
      const stream = message.position?.stream ?? '';
      if (stream.startsWith('topic:')) this.emit(`topic:${stream.slice(6)}`, message);
    }
  }

  answer(message) {
    const waiting = this.pending.get(message.id);
    if (!waiting) return;
    this.pending.delete(message.id);
    clearTimeout(waiting.timer);
    waiting.resolve(message);
  }

  async opened(answer) {
    if (answer.error) {
      // The session ended (or the node lost it): start a new one, and say
      // that everything of the old one's streams may be lost.
      const streams = [...this.positions.keys()];
      this.session = null;
      this.positions.clear();
      this.emit('event:not_recovered', { streams, reason: answer.error.message });
      this.ws?.close();
      return;
    }
    const { result } = answer;
    this.backoff = this.options.minBackoff;
    this.remember(result.streams);
    if (result.resumed) {
      const lost = result.streams.filter((stream) => !stream.recovered).map((stream) => stream.stream);
      if (lost.length > 0) this.emit('event:not_recovered', { streams: lost, reason: 'history does not cover the gap' });
      this.whenOpen.resolve();
      this.emit('event:connected', { client_id: result.client_id, resumed: true });
      return;
    }
    this.session = { client_id: result.client_id, token: result.token };
    this.clientId = result.client_id;
    this.whenOpen.resolve();
    if (this.topics.size > 0) {
      try {
        const subscribed = await this.call('rpc.subscribe', { topics: [...this.topics] });
        this.remember(subscribed.streams);
      } catch (error) {
        this.emit('event:error', error);
      }
    }
    this.emit('event:connected', { client_id: result.client_id, resumed: false });
  }

  remember(streams = []) {
    for (const { stream, epoch, offset } of streams) this.positions.set(stream, { stream, epoch, offset });
  }

  failPending(why) {
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new ConnectionError(`${waiting.method}: ${why}`));
      this.pending.delete(id);
    }
  }
}

function deferred() {
  const state = { settled: false };
  state.promise = new Promise((resolve) => {
    state.resolve = () => {
      state.settled = true;
      resolve();
    };
  });
  return state;
}

function request(method, params) {
  return params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params };
}
