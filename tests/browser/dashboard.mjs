// Drives the dashboard in Debian's Chromium with playwright-core (never a
// browser download) for tests/all/dashboard.rs: waits for the plugins,
// makes the node broadcast a notification and waits for it in the live
// tail, calls methods through the form, saves a screenshot, and prints what
// it saw as one JSON line.
//
//   NODE_PATH=target/toolchains/js/node_modules node dashboard.mjs URL SCREENSHOT

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');
const [url, screenshot] = process.argv.slice(2);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.setDefaultTimeout(20_000);
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  await page.locator('#plugins td', { hasText: 'calculator' }).first().waitFor();
  const plugins = await page.$$eval('#plugins tr td:first-child', (cells) => cells.map((cell) => cell.textContent));

  // A notification the node broadcasts appears live.
  await page.locator('#summary', { hasText: 'methods' }).waitFor();
  await new Promise((resolve) => setTimeout(resolve, 500)); // the tail's stream opens
  const body = { jsonrpc: '2.0', method: 'updateData', params: { id: '7', value: 'from the test' }, id: 1 };
  await fetch(new URL('/', url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const row = page.locator('#tail li', { hasText: 'dataUpdated' }).first();
  await row.waitFor();
  const tail = await row.locator('code').nth(1).textContent();
  const tailStream = await row.locator('.tag').textContent();
  // The filter matches the method or the stream as you type.
  await page.fill('#filter', 'topic:other');
  const filtered = [await row.isHidden()];
  await page.fill('#filter', 'broadcast');
  filtered.push(await row.isVisible());
  await page.fill('#filter', 'dataUp');
  filtered.push(await row.isVisible());
  await page.fill('#filter', '');

  // The form calls methods over WebSocket with the client library.
  await page.selectOption('#method', 'add');
  await page.fill('#params', '{"a": 2, "b": 3}');
  await page.click('#send');
  await page.locator('#answer.ok').waitFor();
  const answer = await page.textContent('#answer');
  await page.selectOption('#method', 'divide');
  await page.fill('#params', '{"a": 1, "b": 0}');
  await page.click('#send');
  await page.locator('#answer.bad').waitFor();
  const error = await page.textContent('#answer');
  await page.fill('#params', '{oops');
  await page.click('#send');
  await page.locator('#answer', { hasText: 'params are not JSON' }).waitFor();
  const badParams = await page.textContent('#answer');

  await page.selectOption('#method', 'add');
  await page.fill('#params', '{"a": 2, "b": 3}');
  await page.click('#send');
  await page.locator('#answer.ok').waitFor();

  // The counts follow (one poll a second).
  await page.locator('#methods tr', { hasText: 'divide' }).locator('td.bad', { hasText: '1' }).waitFor();
  await page.screenshot({ path: screenshot, fullPage: true });
  if (errors.length > 0) throw new Error(`errors on the page: ${errors.join('; ')}`);
  console.log(JSON.stringify({ plugins, tail, tail_stream: tailStream, filtered, answer, error, bad_params: badParams }));
} finally {
  await browser.close();
}
