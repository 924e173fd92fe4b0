// A user's page: the package installed from its tarball, imported by name, used exactly as
// its README shows. Sets window.testResult = { ok, checks } for web/browser-test.mjs.
import init, { Engine } from 'webformer';

const checks = [];
const check = (name, ok, detail = {}) => checks.push({ name, ok: Boolean(ok), ...detail });
const get = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
const txt = async (url) => (await fetch(url)).text();

async function main() {
  const want = await (await fetch('/expected.json')).json();
  await init();
  const engine = await Engine.create({ backend: 'auto' });
  check('engine', ['webgpu', 'cpu'].includes(engine.adapter.backend), { adapter: engine.adapter.name });
  // Generation on the CPU backend: on a software WebGPU adapter (CI's SwiftShader) the first
  // generation spends minutes compiling and running shaders, which test/api.html already covers.
  const cpu = await Engine.create({ backend: 'cpu' });
  const model = await cpu.load({ gguf: await get('/models/smollm2.gguf') });
  let streamed = '';
  const r = await model.generate('The capital of France is', { maxTokens: 8, temperature: 0, seed: 1, chat: false }, (piece) => { streamed += piece; });
  const n = want.ids.length;
  check('generate', r.ids.length === 8 && JSON.stringify(r.ids.slice(0, n)) === JSON.stringify(want.ids) && streamed === r.text, { ids: r.ids, text: r.text, stats: r.stats });
  model.free();
  cpu.free();
  const enc = await engine.load({
    config: await txt('/models/minilm/config.json'),
    weights: await get('/models/minilm/model.safetensors'),
    tokenizer: await txt('/models/minilm/tokenizer.json'),
  });
  const [a, b] = await enc.embed(['A man is eating food.', 'Someone eats.']);
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  check('embed', a instanceof Float32Array && a.length === 384 && dot > 0.3 && dot < 1, { cosine: dot });
  enc.free();
  const c = await engine.matmul(new Float32Array([1, 2, 3, 4]), new Float32Array([5, 6, 7, 8]), 2, 2, 2);
  check('matmul', JSON.stringify(Array.from(c)) === '[19,22,43,50]', { got: Array.from(c) });
  engine.free();
}

main()
  .catch((e) => check('the page ran to the end', false, { error: String((e && e.stack) || e) }))
  .finally(() => {
    document.getElementById('out').textContent = JSON.stringify(checks, null, 2);
    window.testResult = { ok: checks.length > 0 && checks.every((c) => c.ok), checks };
  });
