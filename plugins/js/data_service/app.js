// A data service, as in the RpcNode seed: `updateData {id, value}` stores the
// value in host state, broadcasts `dataUpdated {id, value}` to every WebSocket
// client and answers `{success: true, clients_notified}`; `getData {id}`
// answers `{id, data: {value}, timestamp}`, the time of the update. The
// JavaScript twin of the Rust data_service.

import { Plugin, RpcError, host } from 'rpcnode-sdk';

const plugin = new Plugin('data_service', '0.1.0');

// The application error code for an id with no data.
const NOT_FOUND = 404;

const key = (id) => `data:${JSON.stringify(id)}`;

plugin.method(
  'updateData',
  { params: ['id', 'value'], summary: 'Store a value and broadcast dataUpdated' },
  ({ id, value }) => {
    host.stateSet(key(id), { value, timestamp: Date.now() / 1000 });
    const notified = host.broadcast('dataUpdated', { id, value });
    return { success: true, clients_notified: notified };
  },
);

plugin.method('getData', { params: ['id'], summary: 'Read a stored value' }, ({ id }) => {
  const stored = host.stateGet(key(id));
  if (stored === undefined) {
    throw new RpcError(NOT_FOUND, `no data for id ${JSON.stringify(id)}`);
  }
  return { id, data: { value: stored.value }, timestamp: stored.timestamp };
});

export const handler = plugin.handler();
