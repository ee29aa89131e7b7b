// The scenario the test suite runs against a real node (tests/all/client_libraries.rs):
// connect, subscribe to `news`, make calls, then print every event and every
// `seq` notification as one JSON line until stdin closes.
//
//   node --experimental-websocket scenario.mjs ws://127.0.0.1:8000/ws

import { createInterface } from 'node:readline';
import { RpcClient, RpcError } from '../index.js';

const print = (value) => console.log(JSON.stringify(value));
const client = new RpcClient(process.argv[2], { minBackoff: 50, maxBackoff: 500, timeout: 10_000 });
for (const event of ['connected', 'disconnected', 'not_recovered']) {
  client.onEvent(event, (detail) => print({ event, ...(event === 'disconnected' ? {} : detail) }));
}
client.on('seq', (params, message) => print({ n: params.n, stream: message.position.stream }));
client.onTopic('news', (message) => print({ topic: 'news', n: message.params.n }));

async function outcome(promise) {
  try {
    return { result: await promise };
  } catch (error) {
    return error instanceof RpcError ? { error: { code: error.code, message: error.message } } : { failed: error.name };
  }
}

await client.connect();
print({ event: 'ready', client_id: client.clientId, subscribed: await client.subscribe(['news']) });
print({ call: 'add', ...(await outcome(client.call('add', { a: 2, b: 3 }))) });
print({ call: 'divide', ...(await outcome(client.call('divide', { a: 1, b: 0 }))) });
print({ call: 'nope', ...(await outcome(client.call('nope'))) });
print({ call: 'slow', ...(await outcome(client.call('sleep', { ms: 1000 }, { timeout: 100 }))) });
const batch = await client.batch([{ method: 'add', params: [1, 2] }, { method: 'nope' }]);
print({ batch: batch.map((entry) => (entry instanceof RpcError ? { code: entry.code } : entry)) });

createInterface({ input: process.stdin }).on('close', async () => {
  await client.close();
  print({ event: 'closed' });
});
