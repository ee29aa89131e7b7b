// A data service: `updateData {id, value}` stores the value in host state and
// broadcasts `dataUpdated {id, value}` to every WebSocket client; `getData {id}`
// reads it back. The JavaScript twin of the Rust data_service.

import { Plugin, RpcError, host } from 'rpcnode-sdk';

const plugin = new Plugin('data_service', '0.1.0');

// The application error code for an id with no data.
const NOT_FOUND = 404;

const key = (id) => `data:${JSON.stringify(id)}`;

plugin.method(
  'updateData',
  { params: ['id', 'value'], summary: 'Store a value and broadcast dataUpdated' },
  ({ id, value }) => {
    host.stateSet(key(id), value);
    const notified = host.broadcast('dataUpdated', { id, value });
    return { status: 'updated', id, notified };
  },
);

plugin.method('getData', { params: ['id'], summary: 'Read a stored value' }, ({ id }) => {
  const value = host.stateGet(key(id));
  if (value === undefined) {
    throw new RpcError(NOT_FOUND, `no data for id ${JSON.stringify(id)}`);
  }
  return { id, value };
});

export const handler = plugin.handler();
