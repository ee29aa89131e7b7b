// Hooks: logs every call, counts requests and errors in host state
// (`requests`, `errors`, read back by `audit_counts`), and rejects calls to the
// methods listed in its configuration (`deny_methods = ["…"]` in `audit.toml`).
// The JavaScript twin of the Rust audit plugin.

import { Plugin, RpcError, host } from 'rpcnode-sdk';

const plugin = new Plugin('audit', '0.1.0');

// The application error code for a call the audit policy forbids.
const FORBIDDEN = 403;

plugin.beforeRequest((method) => {
  if (host.config('deny_methods', []).includes(method)) {
    throw new RpcError(FORBIDDEN, `method ${method} is denied by the audit policy`);
  }
});

plugin.afterRequest((method, params, ctx, result, error) => {
  host.stateIncrement('requests');
  if (error !== undefined) {
    host.stateIncrement('errors');
  }
  const caller = ctx.clientId ?? ctx.remoteAddr ?? '-';
  host.log('info', `${method} from ${caller}: ${error === undefined ? 'ok' : `error ${error.code}`}`);
});

// The counts so far; a call's own outcome is counted after it answers.
plugin.method('audit_counts', { params: [], summary: 'Requests and errors seen so far' }, () => ({
  requests: host.stateGet('requests', 0),
  errors: host.stateGet('errors', 0),
}));

export const handler = plugin.handler();
