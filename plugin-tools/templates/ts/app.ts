// {{name}}: an rpcnode plugin in TypeScript.
//
// Build it into the folder `plugins` (served by `rpcnode --plugins plugins`):
// rpcnode build . --out plugins    (--watch rebuilds on every change)
// The build type-checks with tsc first; a type error fails it.

import { Plugin, host } from 'rpcnode-sdk';

interface Hello {
  name?: string;
}

const plugin = new Plugin('{{name}}', '0.1.0');

// Greet `name` ({"name": "Ada"}, ["Ada"] or no params) and count the greetings
// in host state, shared by every instance.
plugin.method('hello', { params: ['name?'], summary: 'Greet someone' }, ({ name = 'world' }: Hello) => {
  const count: number = host.stateIncrement('greetings');
  return { greeting: `Hello, ${name}!`, count };
});

export const handler = plugin.handler();
