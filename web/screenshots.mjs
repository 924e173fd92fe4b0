// Drives the demo page (web/index.html) through its panels in headless Chromium and saves a
// screenshot after each: device, kernels (each op and the LSH picture), embed (heat map),
// generate (streamed text), profile (one decode step's per-node GPU times). Usage: node web/screenshots.mjs OUT_DIR (see scripts/demo-screenshots.sh).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { FLAGS, serve } from './server.mjs';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const OUT = process.argv[2] || path.join(ROOT, '..', 'target', 'screenshots');
const TIMEOUT = 600000;

const server = await serve(ROOT);
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: FLAGS });
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/index.html`);
  const until = (expr, arg = null) => page.waitForFunction(expr, arg, { timeout: TIMEOUT, polling: 250 });
  const shot = async (name) => {
    await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
    console.log(`saved ${path.join(OUT, `${name}.png`)}`);
  };
  await until(() => window.demo.device);
  await page.click('nav button[data-panel=device]');
  await shot('device');
  await page.click('nav button[data-panel=kernels]');
  // One run of each op at a size that finishes in seconds on a software adapter, then the
  // LSH picture.
  const runs = [
    ['matmul', { 'k-m': 256, 'k-k': 256, 'k-n': 256 }],
    ['attention', { 'k-al': 256, 'k-ah': 4, 'k-ad': 64 }],
    ['lsh', { 'k-ll': 8192, 'k-lh': 1, 'k-ld': 64, 'k-lb': 64, 'k-lr': 2, 'k-lc': 64 }],
    ['fft', { 'k-fb': 1, 'k-fl': 512, 'k-fd': 768 }],
  ];
  for (const [i, [op, fields]] of runs.entries()) {
    await page.selectOption('#k-op', op);
    for (const [id, v] of Object.entries(fields)) await page.fill(`#${id}`, String(v));
    await page.click('#k-run');
    await until((n) => (window.demo.kernels?.length ?? 0) + (window.demo.kernelErrors?.length ?? 0) > n, i);
  }
  await page.click('#k-pic');
  await until(() => window.demo.lsh || document.getElementById('k-pic-status').className === 'error');
  await shot('kernels');
  await page.click('nav button[data-panel=embed]');
  await page.click('#emb-load');
  await until(() => !document.getElementById('emb-run').disabled || document.getElementById('emb-status').className === 'error');
  await page.click('#emb-run');
  await until(() => window.demo.embedded);
  await shot('embed');
  await page.click('nav button[data-panel=generate]');
  await page.fill('#gen-max', '8');
  await page.click('#gen-load');
  await until(() => !document.getElementById('gen-run').disabled || document.getElementById('gen-status').className === 'error');
  await page.click('#gen-run');
  await until(() => window.demo.generated);
  await shot('generate');
  await page.click('nav button[data-panel=profile]');
  await page.click('#prof-run');
  await until(() => window.demo.profile || document.getElementById('prof-status').className === 'error');
  await shot('profile');
  const demo = await page.evaluate(() => window.demo);
  console.log(`generated ${JSON.stringify(demo.generated.text)}; kernel errors ${demo.kernels.map((k) => `${k.op} ${k.maxAbsErr}`).join(', ')}; profile ${JSON.stringify(demo.profile)}`);
} finally {
  await browser.close();
  server.close();
}
if (errors.length) {
  console.log(`console errors: ${JSON.stringify(errors)}`);
  process.exitCode = 1;
}
