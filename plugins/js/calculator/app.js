// Arithmetic over JSON-RPC: `add`, `multiply` and `divide`, each taking
// `{"a": …, "b": …}` or `[a, b]`, either operand optional (0 for `add`, 1 for
// `multiply`, 0 and 1 for `divide`, as in the RpcNode seed); the JavaScript
// twin of the Rust calculator.

import { InvalidParams, Plugin } from 'rpcnode-sdk';

const plugin = new Plugin('calculator', '0.1.0');

// `params: ['a', 'b']` alone would publish the names; this adds their type.
const OPERANDS = {
  type: 'object',
  properties: { a: { type: 'number' }, b: { type: 'number' } },
};

/** The two operands, checked to be numbers; `da` and `db` stand in for missing ones. */
function operands(params, da, db) {
  const { a = da, b = db } = params;
  if (typeof a !== 'number') {
    throw new InvalidParams('parameter `a` must be a number');
  }
  if (typeof b !== 'number') {
    throw new InvalidParams('parameter `b` must be a number');
  }
  return [a, b];
}

const options = (summary, extra = {}) => ({ params: ['a?', 'b?'], paramsSchema: OPERANDS, summary, ...extra });

plugin.method(
  'add',
  options('Add two numbers', { resultSchema: { type: 'object', properties: { sum: { type: 'number' } } } }),
  (params) => {
    const [a, b] = operands(params, 0, 0);
    return { sum: a + b };
  },
);

plugin.method('multiply', options('Multiply two numbers'), (params) => {
  const [a, b] = operands(params, 1, 1);
  return { product: a * b };
});

plugin.method(
  'divide',
  options('Divide a by b', { description: 'Fails with invalid params when b is zero.' }),
  (params) => {
    const [a, b] = operands(params, 0, 1);
    if (b === 0) {
      throw new InvalidParams('Cannot divide by zero');
    }
    return { quotient: a / b };
  },
);

export const handler = plugin.handler();
