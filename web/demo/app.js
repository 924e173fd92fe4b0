// The demo page: panels that talk to the engine in demo/worker.js. Sets window.demo = {
// generated, embedded, kernels, device } as panels finish (web/screenshots.mjs waits on it).

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let next = 1;
const pending = new Map();
window.demo = {};

worker.onmessage = ({ data }) => {
  const p = pending.get(data.id);
  if (!p) return;
  if ('piece' in data) return p.onPiece?.(data);
  pending.delete(data.id);
  if (data.ok) p.resolve(data.value);
  else p.reject(new Error(data.error));
};
function call(cmd, args = {}, onPiece = undefined) {
  const id = next++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onPiece });
    worker.postMessage({ id, cmd, ...args });
  });
}
function fail(el, e) {
  el.textContent = e.message;
  el.className = 'error';
}

// Tabs.
for (const b of document.querySelectorAll('nav button')) {
  b.onclick = () => {
    document.querySelectorAll('nav button, .panel').forEach((x) => x.classList.remove('active'));
    b.classList.add('active');
    $(b.dataset.panel).classList.add('active');
  };
}

// Model files: fetched with progress, kept in the Cache API so a reload does not fetch again.
const CACHE = 'webformer-models';
async function fetchBytes(url, progress) {
  const cache = 'caches' in self ? await caches.open(CACHE) : null;
  const hit = await cache?.match(url);
  const resp = hit ?? (await fetch(url));
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  const total = Number(resp.headers.get('content-length')) || 0;
  const reader = resp.clone().body.getReader();
  const parts = [];
  let done = 0;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    parts.push(value);
    done += value.length;
    if (total) progress(done / total);
  }
  if (!hit) await cache?.put(url, resp).catch(() => {});
  const bytes = new Uint8Array(done);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  progress(1);
  return bytes;
}
$('gen-clear-cache').onclick = async () => {
  await caches.delete(CACHE);
  $('gen-status').textContent = 'model cache cleared';
};

// Backend.
async function start() {
  const backend = $('backend').value;
  $('backend-line').textContent = `opening ${backend}…`;
  try {
    const a = await call('create', { backend });
    const what = a.backend === 'webgpu' ? `WebGPU: ${a.name}${a.fallback ? ' (software fallback adapter)' : ''}` : `CPU executor (no WebGPU${a.reason ? `: ${a.reason}` : ''}; slower)`;
    $('backend-line').textContent = what;
    showDevice(a);
    window.demo.device = a;
  } catch (e) {
    $('backend-line').textContent = e.message;
  }
  $('gen-run').disabled = true;
  $('emb-run').disabled = true;
}
$('backend').onchange = start;

// Generate.
$('gen-load').onclick = async () => {
  const status = $('gen-status');
  status.className = '';
  try {
    const file = $('gen-file').files[0];
    status.textContent = `reading ${file ? file.name : $('gen-url').value}…`;
    const bytes = file ? new Uint8Array(await file.arrayBuffer()) : await fetchBytes($('gen-url').value, (f) => ($('gen-progress').value = f));
    $('gen-progress').value = 1;
    status.textContent = 'loading onto the device…';
    const t0 = performance.now();
    const info = await call('load', { slot: 'llm', spec: { gguf: bytes, name: file ? file.name : $('gen-url').value } });
    status.textContent = `${info.kind}: ${info.layers} layers, hidden ${info.hidden}, vocab ${info.vocab}, context ${info.context} on ${info.backend} (${((performance.now() - t0) / 1000).toFixed(1)} s)`;
    $('gen-run').disabled = false;
  } catch (e) {
    fail(status, e);
  }
};
$('gen-run').onclick = async () => {
  const out = $('gen-out');
  out.textContent = '';
  out.className = 'out';
  $('gen-run').disabled = true;
  $('gen-stop').disabled = false;
  let n = 0;
  const options = { maxTokens: Number($('gen-max').value), temperature: Number($('gen-temp').value), seed: Number($('gen-seed').value), chat: $('gen-chat').checked };
  try {
    const r = await call('generate', { prompt: $('gen-prompt').value, options }, ({ piece, elapsedS }) => {
      out.textContent += piece;
      n += 1;
      $('gen-stats').textContent = `${n} tokens, ${(n / Math.max(elapsedS, 1e-3)).toFixed(2)} tokens/s`;
    });
    const s = r.stats;
    $('gen-stats').textContent = `prompt ${s.promptTokens} tokens at ${s.prefillTokensPerS.toPrecision(2)} tokens/s; ${s.generatedTokens} new tokens, decode ${s.decodeTokensPerS.toPrecision(2)} tokens/s${r.aborted ? ' (stopped)' : ''}${r.stoppedAtEos ? ' (end of sequence)' : ''}`;
    window.demo.generated = r;
  } catch (e) {
    fail(out, e);
  }
  $('gen-run').disabled = false;
  $('gen-stop').disabled = true;
};
$('gen-stop').onclick = () => call('stop');

// Embed.
async function minilmSpec() {
  const dir = [...$('emb-dir').files];
  const pick = (suffix) => dir.find((f) => f.webkitRelativePath.endsWith(suffix));
  if (dir.length) {
    const spec = { config: pick('/config.json'), weights: pick('/model.safetensors'), tokenizer: pick('/tokenizer.json') };
    const side = { sentenceConfig: pick('sentence_bert_config.json'), pooling: pick('1_Pooling/config.json'), modules: pick('modules.json') };
    if (side.sentenceConfig && side.pooling) Object.assign(spec, side);
    for (const [k, v] of Object.entries(spec)) if (v) spec[k] = new Uint8Array(await v.arrayBuffer());
    return spec;
  }
  const base = $('emb-url').value.replace(/\/?$/, '/');
  const text = async (f) => (await fetch(base + f)).text();
  return {
    config: await text('config.json'),
    weights: await fetchBytes(base + 'model.safetensors', () => {}),
    tokenizer: await text('tokenizer.json'),
    sentenceConfig: await text('sentence_bert_config.json'),
    pooling: await text('1_Pooling/config.json'),
    modules: await text('modules.json'),
  };
}
$('emb-load').onclick = async () => {
  const status = $('emb-status');
  status.className = '';
  status.textContent = 'loading…';
  try {
    const info = await call('load', { slot: 'enc', spec: await minilmSpec() });
    status.textContent = `${info.kind}: ${info.layers} layers, hidden ${info.hidden} on ${info.backend}`;
    $('emb-run').disabled = false;
  } catch (e) {
    fail(status, e);
  }
};
$('emb-run').onclick = async () => {
  const texts = $('emb-text').value.split('\n').map((t) => t.trim()).filter(Boolean);
  try {
    const { vecs, ms } = await call('embed', { texts });
    const cos = vecs.map((a) => vecs.map((b) => a.reduce((s, x, i) => s + x * b[i], 0)));
    const cell = (c) => `<td style="background:hsl(${220 - 220 * Math.max(0, c)},70%,${90 - 40 * Math.max(0, c)}%)">${c.toFixed(3)}</td>`;
    const esc = (t) => t.replace(/[&<>]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[ch]);
    $('emb-heat').innerHTML = `<table><tr><th></th>${texts.map((_, i) => `<th>${i + 1}</th>`).join('')}</tr>${cos.map((row, i) => `<tr><th>${i + 1}. ${esc(texts[i])}</th>${row.map(cell).join('')}</tr>`).join('')}</table>`;
    $('emb-stats').textContent = `${texts.length} sentences in ${ms.toFixed(0)} ms (cosine similarity of normalised embeddings)`;
    window.demo.embedded = cos;
  } catch (e) {
    fail($('emb-stats'), e);
  }
};

// Kernels.
$('k-run').onclick = async () => {
  const [m, k, n] = ['k-m', 'k-k', 'k-n'].map((id) => Number($(id).value));
  const row = document.createElement('tr');
  $('k-table').tBodies[0].prepend(row);
  row.innerHTML = `<td>matmul</td><td>${m}×${k}·${k}×${n}</td><td colspan="4">running…</td>`;
  try {
    const r = await call('matmul', { m, k, n });
    row.innerHTML = `<td>matmul</td><td>${m}×${k}·${k}×${n}</td><td>${r.backend}</td><td>${r.ms.toFixed(1)} ms</td><td>${r.gflops.toFixed(2)}</td><td>${r.maxErr.toExponential(2)}</td>`;
    (window.demo.kernels ??= []).push({ m, k, n, ...r });
  } catch (e) {
    row.innerHTML = `<td>matmul</td><td>${m}×${k}·${k}×${n}</td><td colspan="4" class="error">${e.message}</td>`;
  }
};

// Device.
function showDevice(a) {
  $('dev-note').textContent = a.backend === 'webgpu'
    ? (a.fallback ? 'WebGPU on a software fallback adapter (CPU-emulated GPU): correct, not fast.' : 'WebGPU on a hardware adapter.')
    : `No WebGPU in use: the CPU executor runs the same graphs, slower.${a.reason ? ` Why: ${a.reason}` : ''}`;
  const rows = [['name', a.name], ['backend', a.backend], ['fallback adapter', String(a.fallback)], ['device type', a.deviceType],
    ['features used', a.features.join(', ') || 'none'], ['all adapter features', (a.allFeatures || []).join(', ')],
    ...Object.entries(a.limits || {})];
  $('dev-table').innerHTML = rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('');
}

if (!('gpu' in navigator)) $('backend-line').textContent = 'This browser has no WebGPU: using the CPU backend (slower).';
start();
