// Arithmetic over JSON-RPC: `add`, `multiply` and `divide`, each taking
// `{"a": …, "b": …}` or `[a, b]`; the JavaScript twin of the Rust calculator.

import { InvalidParams, Plugin } from 'rpcnode-sdk';

const plugin = new Plugin('calculator', '0.1.0');

const OPERANDS = {
  oneOf: [
    {
      type: 'object',
      required: ['a', 'b'],
      properties: { a: { type: 'number' }, b: { type: 'number' } },
    },
    { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
  ],
};

/** The two operands, checked to be numbers. */
function operands({ a, b }) {
  if (typeof a !== 'number') {
    throw new InvalidParams('parameter `a` must be a number');
  }
  if (typeof b !== 'number') {
    throw new InvalidParams('parameter `b` must be a number');
  }
  return [a, b];
}

const options = (summary, extra = {}) => ({ params: ['a', 'b'], paramsSchema: OPERANDS, summary, ...extra });

plugin.method(
  'add',
  options('Add two numbers', { resultSchema: { type: 'object', properties: { sum: { type: 'number' } } } }),
  (params) => {
    const [a, b] = operands(params);
    return { sum: a + b };
  },
);

plugin.method('multiply', options('Multiply two numbers'), (params) => {
  const [a, b] = operands(params);
  return { product: a * b };
});

plugin.method(
  'divide',
  options('Divide a by b', { description: 'Fails with invalid params when b is zero.' }),
  (params) => {
    const [a, b] = operands(params);
    if (b === 0) {
      throw new InvalidParams('Cannot divide by zero');
    }
    return { quotient: a / b };
  },
);

export const handler = plugin.handler();
