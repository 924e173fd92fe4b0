// Runs test pages in headless Chromium and reports the outcome: the WebGPU smoke page, the
// package's API test (test/api.html), the demo page, or a consumer project's page.
//
// Serves --root (default web/) on 127.0.0.1 (a secure context, which WebGPU requires) on a
// free port, plus the reference models (/models/smollm2.gguf from WEBFORMER_GGUF,
// /models/minilm/... from WEBFORMER_MINILM) and /expected.json (WEBFORMER_EXPECTED, the
// native CLI's outputs). Launches the system Chromium through playwright-core with the flags
// NOTES.md section 3 lists (--enable-unsafe-webgpu lets the SwiftShader CPU adapter through),
// opens each --page PATH:VARIABLE, waits for the page to set window[VARIABLE] = { ok, checks },
// and fails a page that logs console errors. The last line is "N passed, M failed".
//
// Usage: node browser-test.mjs [--root DIR] --page /smoke.html:smokeResult ...
// Environment: CHROMIUM (default /usr/bin/chromium), PAGE_TIMEOUT_MS (default 900000).

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { FLAGS, serve } from './server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name) => args.flatMap((a, i) => (a === name ? [args[i + 1]] : []));
const ROOT = path.resolve(opt('--root')[0] || HERE);
const PAGES = opt('--page').map((p) => {
  const [page, variable] = p.split(':');
  return { page, variable: variable || 'testResult' };
});
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.PAGE_TIMEOUT_MS || 900000);
/** Opens one page and waits for window[variable]; console errors fail it. */
async function runPage(browser, base, { page: pagePath, variable }) {
  const page = await browser.newPage();
  const errors = [];
  page.on('console', (m) => {
    console.log(`[page ${m.type()}] ${m.text()}`);
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => {
    console.log(`[page error] ${e.stack || e}`);
    errors.push(String(e));
  });
  page.on('requestfailed', (r) => console.log(`[page request failed] ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) {
      console.log(`[page response ${r.status()}] ${r.url()}`);
      errors.push(`HTTP ${r.status()} for ${r.url()}`);
    }
  });
  const t0 = Date.now();
  let result;
  try {
    await page.goto(base + pagePath);
    await page.waitForFunction((v) => window[v] !== undefined, variable, { timeout: TIMEOUT_MS, polling: 250 });
    result = await page.evaluate((v) => window[v], variable);
  } catch (e) {
    result = { ok: false, error: `${pagePath} did not complete: ${e.message || e}` };
  }
  await page.close().catch(() => {});
  if (errors.length) result = { ...result, ok: false, consoleErrors: errors };
  result.seconds = +((Date.now() - t0) / 1000).toFixed(1);
  return result;
}

async function main() {
  const server = await serve(ROOT);
  const base = `http://127.0.0.1:${server.address().port}`;
  console.log(`serving ${ROOT} at ${base}`);
  let browser;
  let passed = 0;
  let failed = 0;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
    console.log(`browser: ${CHROMIUM} ${browser.version()}`);
    for (const p of PAGES) {
      const result = await runPage(browser, base, p);
      for (const c of result.checks || []) {
        const err = c.maxAbsErr === undefined ? '' : ` max abs err ${c.maxAbsErr.toExponential(2)},`;
        const { name, ok, ...rest } = c;
        console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${name}:${err} ${JSON.stringify(rest)}`);
      }
      if (result.consoleErrors) console.log(`  FAIL console errors: ${JSON.stringify(result.consoleErrors)}`);
      console.log(`${p.page}: ${result.ok ? 'PASS' : 'FAIL'} in ${result.seconds} s${result.error ? `: ${result.error}` : ''}`);
      if (result.ok) passed += 1;
      else failed += 1;
    }
  } finally {
    if (browser) await browser.close().catch(() => {});
    server.close();
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

main().catch((e) => {
  console.error(e);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
