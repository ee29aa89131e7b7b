// JSON text at the WIT boundary, the same way for handlers and host calls:
// `undefined` stands for an absent `option<json>`.

/** JSON text, or undefined (absent) for undefined. */
export function dump(value) {
  return value === undefined ? undefined : JSON.stringify(value);
}

/** The value of JSON text, or `fallback` when the text is absent. */
export function load(text, fallback) {
  return text === undefined ? fallback : JSON.parse(text);
}
