// Runs web/index.html (the WebGPU smoke test) in headless Chromium and reports the outcome.
//
// Serves web/ on 127.0.0.1 (a secure context, which WebGPU requires) on a free port, launches
// the system Chromium through playwright-core with the flags NOTES.md section 3 lists
// (--enable-unsafe-webgpu is what lets the SwiftShader CPU adapter through), waits for the page
// to set window.smokeResult, prints it, and exits non-zero on failure. The last line is
// "N passed, M failed" for CI tools to read.
//
// Environment: CHROMIUM (browser binary, default /usr/bin/chromium), SMOKE_TIMEOUT_MS (120000).

import http from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.SMOKE_TIMEOUT_MS || 120000);
const FLAGS = [
  '--headless=new',
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/** A static file server for web/, refusing paths that leave it. */
function serve() {
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://localhost');
      let rel = decodeURIComponent(url.pathname);
      if (rel.endsWith('/')) rel += 'index.html';
      const file = path.resolve(ROOT, '.' + rel);
      if (!file.startsWith(ROOT + path.sep) || file.includes(`${path.sep}node_modules${path.sep}`)) {
        res.writeHead(403).end('forbidden');
        return;
      }
      if (!(await stat(file)).isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': MIME[path.extname(file)] || 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch (e) {
      const missing = e.code === 'ENOENT' || e.code === 'ENOTDIR';
      res.writeHead(missing ? 404 : 500).end(missing ? 'not found' : String(e));
      if (!missing) console.error(`[server] ${req.url}: ${e}`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function main() {
  const server = await serve();
  const url = `http://127.0.0.1:${server.address().port}/index.html`;
  console.log(`serving ${ROOT} at ${url}`);
  let browser;
  let result;
  const t0 = Date.now();
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
    console.log(`browser: ${CHROMIUM} ${browser.version()}`);
    const page = await browser.newPage();
    page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => console.log(`[page error] ${e.stack || e}`));
    page.on('requestfailed', (r) => console.log(`[page request failed] ${r.url()}: ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) console.log(`[page response ${r.status()}] ${r.url()}`);
    });
    await page.goto(url);
    await page.waitForFunction(() => window.smokeResult !== undefined, null, { timeout: TIMEOUT_MS, polling: 250 });
    result = await page.evaluate(() => window.smokeResult);
  } catch (e) {
    result = { ok: false, error: `browser test did not complete: ${e.message || e}` };
  } finally {
    if (browser) await browser.close().catch(() => {});
    server.close();
  }
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);

  console.log(JSON.stringify(result, null, 2));
  if (result.adapter) console.log(`adapter: ${result.adapter}`);
  for (const c of result.checks || []) {
    const err = c.maxAbsErr === undefined ? '' : ` max abs err ${c.maxAbsErr.toExponential(2)}, max rel err ${c.maxRelErr.toExponential(2)},`;
    console.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}:${err}${c.ms === undefined ? '' : ` ${c.ms} ms`}`);
  }
  console.log(`webgpu smoke: ${result.ok ? 'PASS' : 'FAIL'} in ${seconds} s${result.error ? `: ${result.error}` : ''}`);
  console.log(result.ok ? '1 passed, 0 failed' : '0 passed, 1 failed');
  process.exitCode = result.ok ? 0 : 1;
}

main().catch((e) => {
  console.error(e);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
