// Bundles one plugin's entry module with this SDK into a single ES module for
// componentize-js. The entry (the module the build generates around the
// plugin's own) and output come from the environment: RPCNODE_PLUGIN_ENTRY
// and RPCNODE_PLUGIN_BUNDLE.
//
// Packages resolve as Node resolves an `import`: a package's `exports` map
// first, then its `module` and `main` fields (many packages, lodash-es among
// them, have no `exports`). An import that does not resolve fails the build,
// naming the import and the file, rather than being left for the engine to
// fail on.

import { fileURLToPath } from 'node:url';

export default {
  input: process.env.RPCNODE_PLUGIN_ENTRY,
  platform: 'neutral',
  external: [/^rpcnode:plugin\//, /^wasi:/],
  resolve: {
    alias: { 'rpcnode-sdk': fileURLToPath(new URL('./rpcnode.js', import.meta.url)) },
    conditionNames: ['import', 'module', 'default'],
    mainFields: ['module', 'main'],
  },
  onLog(level, log, handler) {
    // The generated entry module asks whether the plugin exports
    // `batchHandler`; most do not.
    if (log.code === 'IMPORT_IS_UNDEFINED' && log.message.includes('`batchHandler`')) {
      return;
    }
    handler(log.code === 'UNRESOLVED_IMPORT' ? 'error' : level, log);
  },
  output: { file: process.env.RPCNODE_PLUGIN_BUNDLE, format: 'esm' },
};
