// {{name}}: an rpcnode plugin.
//
// Build it into the folder `plugins` (served by `rpcnode --plugins plugins`):
// rpcnode build . --out plugins    (--watch rebuilds on every change)

import { Plugin, host } from 'rpcnode-sdk';

const plugin = new Plugin('{{name}}', '0.1.0');

// Greet `name` ({"name": "Ada"}, ["Ada"] or no params) and count the greetings
// in host state, shared by every instance.
plugin.method('hello', { params: ['name?'], summary: 'Greet someone' }, ({ name = 'world' }) => {
  const count = host.stateIncrement('greetings');
  return { greeting: `Hello, ${name}!`, count };
});

export const handler = plugin.handler();
