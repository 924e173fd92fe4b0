// Drives the demo page (web/index.html) in headless Chromium as a user would, by clicking,
// and checks what each panel shows: every Kernels op within its stated tolerance of the CPU
// reference (on the same size, or on the smaller size named when the full one is too slow for
// the CPU), a size beyond the adapter's buffer limits refused with a message, the LSH
// picture's sorted order really sorted by bucket, the Profile panel's bar chart, the Generate
// panel's model cache (a reload loads without fetching; clear forgets) and drag and drop, the
// CPU backend (a kernel, and the LSH picture agreeing with WebGPU's), and no console errors. The last line is "N passed, M failed".
//
// Sizes are small and awkward (primes, not multiples of a workgroup): WebGPU on SwiftShader
// is slow. The tolerances are the engine's own (engine.kernel states and derives each; see
// src/web/kernels.rs): this test checks withinTol and prints the errors.
//
// Usage: node web/demo-test.mjs   (WEBFORMER_GGUF: a Llama GGUF for the Profile panel; unset
// skips it with a FAIL line, since the panel cannot run without a model)

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { FLAGS, serve } from './server.mjs';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const TIMEOUT = Number(process.env.PAGE_TIMEOUT_MS || 600000);

// Each case: the op, its form fields, and whether the CPU check must be on a smaller size.
const KERNELS = [
  { op: 'matmul', fields: { 'k-m': 67, 'k-k': 45, 'k-n': 33 }, smaller: false },
  { op: 'attention', fields: { 'k-al': 37, 'k-ah': 3, 'k-ad': 20, 'k-ac': true }, smaller: false },
  { op: 'attention', fields: { 'k-al': 65, 'k-ah': 2, 'k-ad': 32, 'k-ac': false }, smaller: false },
  { op: 'lsh', fields: { 'k-ll': 240, 'k-lh': 2, 'k-ld': 32, 'k-lb': 8, 'k-lr': 2, 'k-lc': 16, 'k-lcausal': true }, smaller: false },
  { op: 'lsh', fields: { 'k-ll': 12, 'k-lh': 1, 'k-ld': 8, 'k-lb': 4, 'k-lr': 1, 'k-lc': 16, 'k-lcausal': false }, smaller: false },
  // 4·2·16384·64·128 flop: over the CPU budget, so compared at L = 4096.
  { op: 'lsh', fields: { 'k-ll': 16384, 'k-lh': 1, 'k-ld': 64, 'k-lb': 32, 'k-lr': 2, 'k-lc': 64, 'k-lcausal': true }, smaller: true },
  { op: 'fft', fields: { 'k-fb': 2, 'k-fl': 12, 'k-fd': 36 }, smaller: false },
  { op: 'fft', fields: { 'k-fb': 1, 'k-fl': 64, 'k-fd': 13 }, smaller: false },
];

const checks = [];
function check(name, ok, detail = {}) {
  checks.push({ name, ok, ...detail });
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${name} ${JSON.stringify(detail)}`);
}

async function setFields(page, fields) {
  for (const [id, v] of Object.entries(fields)) {
    if (typeof v === 'boolean') await page.setChecked(`#${id}`, v);
    else await page.fill(`#${id}`, String(v));
  }
}

async function kernels(page, until) {
  await page.click('nav button[data-panel=kernels]');
  for (const [i, c] of KERNELS.entries()) {
    // After a reload the last model loads from the Cache API without fetching the file again; a
// dropped file that is no model gives a clear error; clearing the cache forgets the model.
async function generateCache(page, until, fetches) {
  if (!process.env.WEBFORMER_GGUF) return;
  const before = fetches.length;
  await page.reload();
  await until(() => window.demo.device);
  await page.click('nav button[data-panel=generate]');
  const kept = await page.isVisible('#gen-kept');
  await page.click('#gen-load-kept');
  await until(() => window.demo.loaded || document.getElementById('gen-status').className === 'error');
  const loaded = await page.evaluate(() => window.demo.loaded ?? { error: document.getElementById('gen-status').textContent });
  check('reload: the model loads from the browser cache, not fetched again', kept && loaded.from === 'cache' && fetches.length === before, { ...loaded, fetchesAfterReload: fetches.length - before });
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(64).fill(7)], 'broken.gguf'));
    document.getElementById('generate').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await until(() => document.getElementById('gen-status').className === 'error');
  const msg = await page.textContent('#gen-status');
  check('drag and drop of a file that is no model: a clear error', /broken\.gguf/.test(msg), { message: msg });
  await page.click('#gen-clear-cache');
  await until(() => document.getElementById('gen-kept').hidden);
  const left = await page.evaluate(async () => (await caches.keys()).length);
  check('clear cache forgets the model', left === 0, { cachesLeft: left });
}

// The CPU backend (what a browser without WebGPU gets): a kernel runs there and says it is
// the reference itself; the LSH picture's buckets and order from the CPU executor agree with
// the WebGPU kernels' (seeded inputs, the same spec), up to the rare f32 ties the native hash
// test allows (at most 1 in 200 buckets).
async function cpuBackend(page, until, gpuPicture) {
  await page.selectOption('#backend', 'cpu');
  await until(() => window.demo.device?.backend === 'cpu');
  await page.click('nav button[data-panel=kernels]');
  await page.selectOption('#k-op', 'matmul');
  await setFields(page, { 'k-m': 17, 'k-k': 9, 'k-n': 5 });
  const n = await page.evaluate(() => window.demo.kernels?.length ?? 0);
  await page.click('#k-run');
  await until((k) => (window.demo.kernels?.length ?? 0) > k || window.demo.kernelErrors?.length, n);
  const r = await page.evaluate(() => window.demo.kernels?.at(-1));
  check('CPU backend: matmul runs, not compared with itself', r?.backend === 'cpu' && /reference itself/.test(r.checkedOn), { ms: r?.ms, checkedOn: r?.checkedOn });
  if (!gpuPicture) return;
  await setFields(page, { 'k-pl': gpuPicture.l, 'k-pc': gpuPicture.chunk, 'k-pb': gpuPicture.buckets, 'k-pr': gpuPicture.rounds });
  await page.evaluate(() => delete window.demo.lsh);
  await page.click('#k-pic');
  await until(() => window.demo.lsh || document.getElementById('k-pic-status').className === 'error');
  const c = await page.evaluate(() => window.demo.lsh);
  const differ = c ? c.bucket.filter((b, i) => b !== gpuPicture.bucket[i]).length : Infinity;
  const samePerm = c && c.perm.every((x, i) => x === gpuPicture.perm[i]);
  check('LSH picture: CPU executor and WebGPU agree on buckets and order', differ * 200 <= gpuPicture.bucket.length && (differ > 0 || samePerm), { bucketsDiffering: differ, of: gpuPicture.bucket.length, samePerm });
}

const t0 = Date.now();
    await page.selectOption('#k-op', c.op);
    await setFields(page, c.fields);
    await page.click('#k-run');
    await until((n) => (window.demo.kernels?.length ?? 0) + (window.demo.kernelErrors?.length ?? 0) > n, i);
    const r = await page.evaluate((n) => window.demo.kernels?.[n] ?? { error: window.demo.kernelErrors?.at(-1)?.error }, i);
    const smaller = r.checkedOn && r.checkedOn !== 'the same size';
    check(`${c.op} ${r.size ?? JSON.stringify(c.fields)}`, Boolean(r.withinTol) && smaller === c.smaller, {
      maxAbsErr: r.maxAbsErr,
      tolerance: r.tolerance && `${r.tolerance.atol.toExponential(1)} + ${r.tolerance.rtol}·|want|`,
      errOverTol: r.errOverTol,
      checkedOn: r.checkedOn,
      gpuMs: r.gpuMs,
      throughput: r.gflops !== undefined ? `${r.gflops.toFixed(2)} GFLOP/s` : r.tokensPerS && `${r.tokensPerS.toFixed(0)} tokens/s`,
      error: r.error,
      seconds: (Date.now() - t0) / 1000,
    });
  }
  // Beyond the adapter's buffer limits: refused before anything is allocated.
  await page.selectOption('#k-op', 'lsh');
  await setFields(page, { 'k-ll': 2097152, 'k-lh': 1, 'k-ld': 128, 'k-lb': 64, 'k-lr': 2, 'k-lc': 64 });
  const errs = await page.evaluate(() => window.demo.kernelErrors?.length ?? 0);
  await page.click('#k-run');
  await until((n) => (window.demo.kernelErrors?.length ?? 0) > n, errs);
  const refusal = await page.evaluate(() => window.demo.kernelErrors.at(-1).error);
  check('LSH at L = 2,097,152 refused with the limit named', /maxStorageBufferBindingSize/.test(refusal) && /MiB/.test(refusal), { message: refusal });
}

async function lshPicture(page, until) {
  await page.fill('#k-pl', '96');
  await page.fill('#k-pc', '12');
  await page.click('#k-pic');
  await until(() => window.demo.lsh || document.getElementById('k-pic-status').className === 'error');
  const p = await page.evaluate(() => window.demo.lsh ?? { error: document.getElementById('k-pic-status').textContent });
  if (p.error) {
    check('LSH picture', false, { error: p.error });
    return null;
  }
  const n = p.l * p.rounds;
  const isPerm = p.perm.length === n && new Set(p.perm).size === n && p.perm.every((x) => x < n);
  // Sorted order: rounds in order, buckets non-decreasing within a round, ties by token.
  let sorted = true;
  for (let s = 1; s < n; s++) {
    const [a, b] = [p.perm[s - 1], p.perm[s]];
    const ka = Math.floor(a / p.l) * p.buckets + p.bucket[a];
    const kb = Math.floor(b / p.l) * p.buckets + p.bucket[b];
    if (ka > kb || (ka === kb && a > b)) sorted = false;
  }
  const used = new Set(p.bucket).size;
  check('LSH picture: perm is a stable sort of the buckets', isPerm && sorted && used > 1, { l: p.l, bucketsUsed: used, attendedPairs: p.pairs });
  // The canvas holds the drawing (not blank): sample its pixels.
  const inked = await page.evaluate(() => {
    const c = document.getElementById('k-lsh');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
    return n;
  });
  check('LSH picture drawn', inked > 20000, { inkedPixels: inked });
  return p;
}

async function profile(page, until) {
  if (!process.env.WEBFORMER_GGUF) return check('profile panel', false, { error: 'WEBFORMER_GGUF is not set' });
  await page.click('nav button[data-panel=generate]');
  await page.click('#gen-load');
  await until(() => !document.getElementById('gen-run').disabled || document.getElementById('gen-status').className === 'error');
  await page.click('nav button[data-panel=profile]');
  await page.fill('#prof-pos', '3');
  await page.click('#prof-run');
  await until(() => window.demo.profile || document.getElementById('prof-status').className === 'error');
  const r = await page.evaluate(() => ({ p: window.demo.profile, status: document.getElementById('prof-status').textContent, bars: document.querySelectorAll('#prof-ops .bar').length }));
  check('profile panel: per-node GPU times as bars', Boolean(r.p && (r.p.kernels > 0 ? r.bars > 3 : r.p.wallMsPerStep > 0)), { ...r.p, bars: r.bars, status: r.status });
}

// After a reload the last model loads from the Cache API without fetching the file again; a
// dropped file that is no model gives a clear error; clearing the cache forgets the model.
async function generateCache(page, until, fetches) {
  if (!process.env.WEBFORMER_GGUF) return;
  const before = fetches.length;
  await page.reload();
  await until(() => window.demo.device);
  await page.click('nav button[data-panel=generate]');
  const kept = await page.isVisible('#gen-kept');
  await page.click('#gen-load-kept');
  await until(() => window.demo.loaded || document.getElementById('gen-status').className === 'error');
  const loaded = await page.evaluate(() => window.demo.loaded ?? { error: document.getElementById('gen-status').textContent });
  check('reload: the model loads from the browser cache, not fetched again', kept && loaded.from === 'cache' && fetches.length === before, { ...loaded, fetchesAfterReload: fetches.length - before });
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(64).fill(7)], 'broken.gguf'));
    document.getElementById('generate').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await until(() => document.getElementById('gen-status').className === 'error');
  const msg = await page.textContent('#gen-status');
  check('drag and drop of a file that is no model: a clear error', /broken\.gguf/.test(msg), { message: msg });
  await page.click('#gen-clear-cache');
  await until(() => document.getElementById('gen-kept').hidden);
  const left = await page.evaluate(async () => (await caches.keys()).length);
  check('clear cache forgets the model', left === 0, { cachesLeft: left });
}

// The CPU backend (what a browser without WebGPU gets): a kernel runs there and says it is
// the reference itself; the LSH picture's buckets and order from the CPU executor agree with
// the WebGPU kernels' (seeded inputs, the same spec), up to the rare f32 ties the native hash
// test allows (at most 1 in 200 buckets).
async function cpuBackend(page, until, gpuPicture) {
  await page.selectOption('#backend', 'cpu');
  await until(() => window.demo.device?.backend === 'cpu');
  await page.click('nav button[data-panel=kernels]');
  await page.selectOption('#k-op', 'matmul');
  await setFields(page, { 'k-m': 17, 'k-k': 9, 'k-n': 5 });
  const n = await page.evaluate(() => window.demo.kernels?.length ?? 0);
  await page.click('#k-run');
  await until((k) => (window.demo.kernels?.length ?? 0) > k || window.demo.kernelErrors?.length, n);
  const r = await page.evaluate(() => window.demo.kernels?.at(-1));
  check('CPU backend: matmul runs, not compared with itself', r?.backend === 'cpu' && /reference itself/.test(r.checkedOn), { ms: r?.ms, checkedOn: r?.checkedOn });
  if (!gpuPicture) return;
  await setFields(page, { 'k-pl': gpuPicture.l, 'k-pc': gpuPicture.chunk, 'k-pb': gpuPicture.buckets, 'k-pr': gpuPicture.rounds });
  await page.evaluate(() => delete window.demo.lsh);
  await page.click('#k-pic');
  await until(() => window.demo.lsh || document.getElementById('k-pic-status').className === 'error');
  const c = await page.evaluate(() => window.demo.lsh);
  const differ = c ? c.bucket.filter((b, i) => b !== gpuPicture.bucket[i]).length : Infinity;
  const samePerm = c && c.perm.every((x, i) => x === gpuPicture.perm[i]);
  check('LSH picture: CPU executor and WebGPU agree on buckets and order', differ * 200 <= gpuPicture.bucket.length && (differ > 0 || samePerm), { bucketsDiffering: differ, of: gpuPicture.bucket.length, samePerm });
}

const t0 = Date.now();
const server = await serve(ROOT);
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: FLAGS });
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  const fetches = [];
  page.on('request', (r) => r.url().endsWith('/models/smollm2.gguf') && fetches.push(r.url()));
  const until = (fn, arg) => page.waitForFunction(fn, arg, { timeout: TIMEOUT, polling: 250 });
  await page.goto(`${base}/index.html`);
  await until(() => window.demo.device);
  const device = await page.evaluate(() => window.demo.device);
  console.log(`adapter: ${device.name} (${device.backend}${device.fallback ? ', fallback' : ''}); features ${device.features.join(', ')}`);
  check('WebGPU adapter in use', device.backend === 'webgpu', { name: device.name });
  await kernels(page, until);
  const picture = await lshPicture(page, until);
  await profile(page, until);
  await generateCache(page, until, fetches);
  await cpuBackend(page, until, picture);
} catch (e) {
  check('demo page', false, { error: String(e.message || e) });
} finally {
  await browser.close();
  server.close();
}
check('no console errors', errors.length === 0, { errors });
const failed = checks.filter((c) => !c.ok).length;
console.log(`demo page: ${failed ? 'FAIL' : 'PASS'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(`${checks.length - failed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
