// Smoke test for webformer in the browser: a matmul of awkward size and a GELU on WebGPU,
// checked against float64 references computed right here. The outcome goes to
// window.smokeResult (for web/browser-test.mjs) and to the page text (for people).

import init, { adapter_info, matmul, gelu } from './pkg/webformer_wasm.js';
import * as ref from './reference.js';

const RTOL = 1e-4; // f32 kernels against float64 references
const ATOL = 1e-5;

function show(result) {
  window.smokeResult = result;
  const status = document.getElementById('status');
  status.textContent = result.ok ? `PASS on ${result.adapter}` : `FAIL: ${result.error ?? 'see below'}`;
  status.className = result.ok ? 'ok' : 'fail';
  document.getElementById('out').textContent = JSON.stringify(result, null, 2);
}

/** GPUAdapterInfo as the page sees it, or null. */
async function browserAdapterInfo() {
  const a = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!a) return null;
  const i = a.info ?? {};
  return {
    vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
    isFallbackAdapter: i.isFallbackAdapter ?? a.isFallbackAdapter,
    features: [...a.features].sort(),
  };
}

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return [value, +(performance.now() - t0).toFixed(2)];
}

async function main() {
  await init();
  const info = await adapter_info();
  // wgpu names a WebGPU adapter by GPUAdapterInfo.description, which browsers often leave empty
  // (SwiftShader does); the browser's vendor/architecture say what it is.
  const browserInfo = await browserAdapterInfo();
  const label = [browserInfo?.vendor, browserInfo?.architecture].filter(Boolean).join(' ');
  const adapter = info.name || !label ? info.one_line : `${label}${info.one_line}`;
  const checks = [];
  const next = ref.rng(20240611);

  // Matmul: 37x53 · 53x29, sizes that divide no tile evenly.
  {
    const [m, k, n] = [37, 53, 29];
    const a = ref.uniformF32(next, m * k, -1, 1);
    const b = ref.uniformF32(next, k * n, -1, 1);
    const [got, ms] = await timed(() => matmul(a, b, m, k, n));
    const cmp = ref.compare(got, ref.matmul(a, b, m, k, n), RTOL, ATOL);
    checks.push({ name: `matmul ${m}x${k}·${k}x${n}`, n: got.length, ms, ...cmp });
  }

  // GELU (exact erf) over [-8, 8] plus values where approximations tend to slip.
  {
    const x = ref.uniformF32(next, 1000, -8, 8);
    const special = Float32Array.from([0, 1e-3, -1e-3, 0.5, -0.5, 1, -1, 3, -3, 5.5, -5.5, 10, -10]);
    const xs = new Float32Array(x.length + special.length);
    xs.set(x);
    xs.set(special, x.length);
    const [got, ms] = await timed(() => gelu(xs));
    const cmp = ref.compare(got, Float64Array.from(xs, ref.gelu), RTOL, ATOL);
    checks.push({ name: `gelu n=${xs.length}`, n: got.length, ms, ...cmp });
  }

  // Errors surface as JS exceptions carrying webformer's message, not as panics.
  {
    let message = null;
    try {
      await matmul(new Float32Array(3), new Float32Array(4), 2, 2, 2);
    } catch (e) {
      message = String(e?.message ?? e);
    }
    checks.push({ name: 'bad input size rejects', ok: message !== null && message.includes('needs'), message });
  }

  const maxErr = Math.max(...checks.map((c) => c.maxAbsErr ?? 0));
  return {
    ok: checks.every((c) => c.ok),
    adapter,
    adapterInfo: info,
    browserAdapterInfo: browserInfo,
    maxErr,
    rtol: RTOL,
    atol: ATOL,
    checks,
  };
}

main().then(show, (e) => show({ ok: false, error: String(e?.stack ?? e?.message ?? e) }));
