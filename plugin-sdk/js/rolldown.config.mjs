// Bundles one plugin's entry module with this SDK into a single ES module for
// componentize-js. The entry and output come from the environment:
// RPCNODE_PLUGIN_ENTRY and RPCNODE_PLUGIN_BUNDLE.

import { fileURLToPath } from 'node:url';

export default {
  input: process.env.RPCNODE_PLUGIN_ENTRY,
  platform: 'neutral',
  external: [/^rpcnode:plugin\//, /^wasi:/],
  resolve: { alias: { 'rpcnode-sdk': fileURLToPath(new URL('./rpcnode.js', import.meta.url)) } },
  output: { file: process.env.RPCNODE_PLUGIN_BUNDLE, format: 'esm' },
};
