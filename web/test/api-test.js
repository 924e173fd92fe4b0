// The package's JS API in a real browser, against the native CLI's outputs
// (/expected.json, written by scripts/browser-test.sh): SmolLM2 greedy tokens on WebGPU and on
// the CPU backend, MiniLM embeddings, forward shapes, and the errors wrong inputs give.
// Imports the package as built (web/pkg/webformer.js).

import init, { Engine } from '../pkg/webformer.js';

const checks = [];
const out = document.getElementById('out');
function log(line) {
  out.textContent += `\n${line}`;
  console.log(line);
}
function check(name, ok, detail = {}) {
  checks.push({ name, ok: Boolean(ok), ...detail });
  log(`${ok ? 'ok  ' : 'FAIL'} ${name} ${JSON.stringify(detail)}`);
}
async function rejects(name, promiseFn, needle) {
  try {
    await promiseFn();
    check(name, false, { error: 'resolved; expected a rejection' });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    check(name, e instanceof Error && msg.includes(needle), { message: msg, expected: needle });
  }
}
const cosine = (a, b) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.sqrt(na * nb);
};
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
async function bytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}
const text = async (url) => (await fetch(url)).text();
const secs = (t0) => +((performance.now() - t0) / 1000).toFixed(2);

async function minilmFiles() {
  return {
    config: await text('/models/minilm/config.json'),
    weights: await bytes('/models/minilm/model.safetensors'),
    tokenizer: await text('/models/minilm/tokenizer.json'),
    sentenceConfig: await text('/models/minilm/sentence_bert_config.json'),
    pooling: await text('/models/minilm/1_Pooling/config.json'),
    modules: await text('/models/minilm/modules.json'),
  };
}

async function gpuChecks(want, gguf) {
  const engine = await Engine.create({ backend: 'webgpu' });
  const a = engine.adapter;
  check('adapter', a.backend === 'webgpu' && typeof a.name === 'string' && Array.isArray(a.features) && a.limits.maxStorageBufferBindingSize > 0,
    { name: a.name, fallback: a.fallback, features: a.features });
  let t0 = performance.now();
  const llm = await engine.load({ gguf, name: 'SmolLM2-135M-Instruct.Q4_1.gguf' });
  log(`loaded SmolLM2 on WebGPU in ${secs(t0)} s`);
  const pieces = [];
  t0 = performance.now();
  const r = await llm.generate(want.prompt, { maxTokens: want.ids.length, temperature: 0, seed: 1, chat: false }, (p) => { pieces.push(p); });
  check('webgpu greedy tokens equal the native CLI', same(r.ids, want.ids), { got: r.ids, want: want.ids, text: r.text, s: secs(t0) });
  check('streamed pieces make the text', pieces.join('') === r.text && r.text === want.text, { pieces: pieces.join(''), text: r.text, want: want.text });
  const st = r.stats;
  check('stats', st.promptTokens === want.promptIds.length && st.prefillTokensPerS > 0 && st.decodeTokensPerS > 0 && Number.isFinite(st.decodeTokensPerS),
    { stats: st });
  await rejects('empty prompt', () => llm.generate('   ', { maxTokens: 2 }), 'prompt is empty');
  await rejects('unknown option', () => llm.generate('hi', { maxTokenz: 2 }), "unknown option 'maxTokenz'");
  await rejects('negative temperature', () => llm.generate('hi', { temperature: -1 }), 'temperature');
  await rejects('maxTokens 0', () => llm.generate('hi', { maxTokens: 0 }), 'maxTokens');
  await rejects('topP fixed at load', () => llm.generate('hi', { topP: 0.5 }), 'fixed when the model is loaded');
  await rejects('embed on a decoder', () => llm.embed(['x']), 'embed needs an encoder');
  await rejects('token id outside the vocabulary', () => llm.forward([1, 999999]), 'outside the model');
  llm.free();
  await rejects('freed model', () => llm.generate('hi'), 'freed');
  engine.free();
}

/** The queue, stop and forward of a decoder: on the CPU backend, which decodes faster than
 * WebGPU on a software adapter (each SwiftShader prefill of SmolLM2 takes about a minute). */
async function decoderCalls(llm, want) {
  // Two calls at once: the second waits its turn, and both give the native tokens.
  const [x, y] = await Promise.all([
    llm.generate(want.prompt, { maxTokens: 3 }),
    llm.generate(want.prompt, { maxTokens: 3 }),
  ]);
  check('concurrent generate calls are queued', same(x.ids, want.ids.slice(0, 3)) && same(y.ids, x.ids), { x: x.ids, y: y.ids });
  const s = await llm.generate(want.prompt, { maxTokens: 4 }, () => false);
  check('onPiece returning false stops', s.ids.length === 1, { ids: s.ids });
  const stop = new AbortController();
  const ab = await llm.generate(want.prompt, { maxTokens: 4, signal: stop.signal }, () => stop.abort());
  check('an aborted signal stops', ab.aborted && ab.ids.length === 1, { ids: ab.ids, aborted: ab.aborted });
  const f = await llm.forward(want.promptIds);
  const vocab = llm.info.vocab;
  const last = f.data.subarray((f.shape[0] - 1) * vocab);
  const argmax = last.reduce((best, v, i) => (v > last[best] ? i : best), 0);
  check('forward: logits [T, vocab], the last row picks the first new token',
    same(f.shape, [want.promptIds.length, vocab]) && f.data.every(Number.isFinite) && argmax === want.ids[0], { shape: f.shape, argmax });
}

async function gpuEncoderChecks(want, gguf, minilm) {
  const engine = await Engine.create({ backend: 'webgpu' });
  const t0 = performance.now();
  const enc = await engine.load(minilm);
  const vecs = await enc.embed(want.sentences);
  const cos = vecs.map((v, i) => cosine(v, want.embeddings[i]));
  const norms = vecs.map((v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)));
  check('webgpu MiniLM embeddings: cosine >= 0.9999 with native', vecs.length === want.embeddings.length && cos.every((c) => c >= 0.9999),
    { cosine: cos, s: secs(t0) });
  check('embeddings are normalised Float32Arrays', vecs.every((v) => v instanceof Float32Array && v.length === 384) && norms.every((n) => Math.abs(n - 1) < 1e-5), { norms });
  const h = await enc.forward([101, 7592, 102]);
  check('encoder forward shape', same(h.shape, [3, 384]), { shape: h.shape });
  await rejects('generate on an encoder', () => enc.generate('hi'), 'generate needs a decoder');
  await rejects('embed of a non-array', () => enc.embed('one string'), 'array of strings');
  enc.free();

  await rejects('non-model file', () => engine.load({ gguf: new TextEncoder().encode('<html>not a model</html>') }), 'GGUF');
  await rejects('truncated GGUF', () => engine.load({ gguf: gguf.subarray(0, 4096) }), 'model.gguf');
  await rejects('bad load key', () => engine.load({ gguff: gguf }), "unknown option 'gguff'");
  await rejects('BERT folder without weights', () => engine.load({ config: minilm.config, tokenizer: minilm.tokenizer }), 'weights is missing');
  await rejects('not a safetensors file', () => engine.load({ ...minilm, weights: new Uint8Array(100) }), 'model.safetensors');
  const m = await engine.matmul(new Float32Array([1, 2, 3, 4, 5, 6]), new Float32Array([1, 0, 0, 1, 1, 1]), 2, 3, 2);
  check('matmul', same(Array.from(m), [4, 5, 10, 11]), { got: Array.from(m) });
  await rejects('matmul sizes', () => engine.matmul(new Float32Array(5), new Float32Array(6), 2, 3, 2), 'needs 6');
  engine.free();
}

async function cpuChecks(want, gguf, minilm) {
  const engine = await Engine.create({ backend: 'cpu' });
  check('cpu adapter', engine.adapter.backend === 'cpu', { adapter: engine.adapter });
  let t0 = performance.now();
  const llm = await engine.load({ gguf, context: 64 });
  // The CPU executor in wasm decodes faster than WebGPU on a software adapter: all tokens.
  const n = want.ids.length;
  const r = await llm.generate(want.prompt, { maxTokens: n, temperature: 0 });
  check('cpu greedy tokens equal the native CLI', same(r.ids, want.ids.slice(0, n)), { got: r.ids, want: want.ids.slice(0, n), s: secs(t0), stats: r.stats });
  await decoderCalls(llm, want);
  llm.free();
  t0 = performance.now();
  const enc = await engine.load(minilm);
  const vecs = await enc.embed(want.sentences.slice(0, 1));
  const c = cosine(vecs[0], want.embeddings[0]);
  check('cpu MiniLM embedding: cosine >= 0.9999 with native', c >= 0.9999, { cosine: c, s: secs(t0) });
  enc.free();
  engine.free();
}

async function main() {
  // ?only=llm | encoder | cpu runs one part (scripts/browser-test.sh runs each as its own page).
  const only = new URLSearchParams(location.search).get('only');
  await init();
  await rejects('unknown backend', () => Engine.create({ backend: 'tpu' }), "backend 'tpu' is unknown");
  const want = await (await fetch('/expected.json')).json();
  const gguf = await bytes('/models/smollm2.gguf');
  const minilm = await minilmFiles();
  if (!only || only === 'llm') await gpuChecks(want, gguf);
  if (!only || only === 'encoder') await gpuEncoderChecks(want, gguf, minilm);
  if (!only || only === 'cpu') await cpuChecks(want, gguf, minilm);
}

main()
  .catch((e) => check('the test page ran to the end', false, { error: String(e && e.stack || e) }))
  .finally(() => {
    window.testResult = { ok: checks.length > 0 && checks.every((c) => c.ok), checks };
  });
