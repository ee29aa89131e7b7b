// Validate an OpenRPC document with the OpenRPC project's own validator
// (@open-rpc/schema-utils-js, installed by cargo xtask into
// target/toolchains/js). Prints "valid", or each error, and exits 1.
//
//   node validate-openrpc.mjs NODE_MODULES DOCUMENT.json

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const [nodeModules, file] = process.argv.slice(2);
const require = createRequire(join(nodeModules, 'noop.js'));
const { validateOpenRPCDocument } = require('@open-rpc/schema-utils-js');

const result = validateOpenRPCDocument(JSON.parse(readFileSync(file, 'utf8')));
if (result === true) {
  console.log('valid');
} else {
  console.log(JSON.stringify(result, null, 2));
  process.exit(1);
}
