// Drives the demo page (web/index.html) through its panels in headless Chromium and saves a
// screenshot after each: device, kernels (matmul), embed (heat map), generate (streamed
// text). Usage: node web/screenshots.mjs OUT_DIR (see scripts/demo-screenshots.sh).
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
  const until = (expr) => page.waitForFunction(expr, null, { timeout: TIMEOUT, polling: 250 });
  const shot = async (name) => {
    await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
    console.log(`saved ${path.join(OUT, `${name}.png`)}`);
  };
  await until(() => window.demo.device);
  await page.click('nav button[data-panel=device]');
  await shot('device');
  await page.click('nav button[data-panel=kernels]');
  await page.click('#k-run');
  await until(() => window.demo.kernels?.length);
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
  const demo = await page.evaluate(() => window.demo);
  console.log(`generated ${JSON.stringify(demo.generated.text)}; matmul max error ${demo.kernels[0].maxErr}`);
} finally {
  await browser.close();
  server.close();
}
if (errors.length) {
  console.log(`console errors: ${JSON.stringify(errors)}`);
  process.exitCode = 1;
}
