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
// Files picked or dropped are kept in the same cache under a key of their own; the last model
// loaded (file or URL) is named in localStorage by its cache key, so after a reload it loads
// from the cache with one click, the file not read (or fetched) again.
const LOCAL = (name) => `${location.origin}/webformer-local/${encodeURIComponent(name)}`;
const LAST = 'webformer-last-model';
const keyName = (key) => decodeURIComponent(key.split('/').pop());
async function keepFile(file, bytes) {
  if (!('caches' in self)) return;
  const cache = await caches.open(CACHE);
  await cache.put(LOCAL(file.name), new Response(bytes, { headers: { 'content-length': String(bytes.length) } }));
  localStorage.setItem(LAST, LOCAL(file.name));
}
async function showKept() {
  const key = localStorage.getItem(LAST);
  const hit = key && 'caches' in self && (await (await caches.open(CACHE)).match(key));
  $('gen-kept').hidden = !hit;
  const bytes = hit ? Number(hit.headers.get('content-length')) : 0;
  if (hit) $('gen-kept-name').textContent = `${keyName(key)}${bytes ? ` (${(bytes / 2 ** 20).toFixed(0)} MiB)` : ''} is kept in this browser`;
}
$('gen-clear-cache').onclick = async () => {
  await caches.delete(CACHE);
  localStorage.removeItem(LAST);
  await showKept();
  $('gen-status').className = '';
  $('gen-status').textContent = 'model cache cleared: the next load reads the file again';
};
showKept();

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
  $('prof-run').disabled = true;
}
$('backend').onchange = start;

// Generate.
async function loadModel(source) {
  const status = $('gen-status');
  status.className = '';
  try {
    let bytes;
    let name;
    $('gen-progress').value = 0;
    if (source.file) {
      name = source.file.name;
      status.textContent = `reading ${name}…`;
      bytes = new Uint8Array(await source.file.arrayBuffer());
    } else if (source.kept) {
      name = keyName(source.kept);
      status.textContent = `reading ${name} from the browser's cache…`;
      const hit = await (await caches.open(CACHE)).match(source.kept);
      if (!hit) throw new Error(`${name} is no longer in the browser's cache; pick the file again`);
      bytes = new Uint8Array(await hit.arrayBuffer());
    } else {
      name = $('gen-url').value;
      status.textContent = `fetching ${name}…`;
      bytes = await fetchBytes(name, (f) => ($('gen-progress').value = f));
      localStorage.setItem(LAST, new URL(name, location.href).href);
    }
    $('gen-progress').value = 1;
    status.textContent = 'loading onto the device…';
    const t0 = performance.now();
    const info = await call('load', { slot: 'llm', spec: { gguf: bytes, name, topP: Number($('gen-topp').value) } });
    status.textContent = `${name}: ${info.kind}, ${info.layers} layers, hidden ${info.hidden}, vocab ${info.vocab}, context ${info.context} on ${info.backend} (${((performance.now() - t0) / 1000).toFixed(1)} s)`;
    // Kept only once it has loaded: a file that is no model is not remembered.
    if (source.file) await keepFile(source.file, bytes).catch((e) => console.warn(`could not keep ${name} in the cache: ${e.message}`));
    $('gen-run').disabled = false;
    $('prof-run').disabled = false;
    window.demo.loaded = { name, from: source.file ? 'file' : source.kept ? 'cache' : 'url' };
    await showKept();
  } catch (e) {
    fail(status, e);
  }
}
$('gen-load').onclick = () => loadModel($('gen-file').files[0] ? { file: $('gen-file').files[0] } : { url: true });
$('gen-load-kept').onclick = () => loadModel({ kept: localStorage.getItem(LAST) });
// Drag and drop: a .gguf dropped anywhere on the Generate panel loads it.
const drop = $('generate');
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('dragging');
});
drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('dragging');
  const file = e.dataTransfer.files[0];
  if (file) loadModel({ file });
});
$('gen-run').onclick = async () => {
  const out = $('gen-out');
  out.textContent = '';
  out.className = 'out';
  $('gen-run').disabled = true;
  $('gen-stop').disabled = false;
  let n = 0;
  const options = { maxTokens: Number($('gen-max').value), temperature: Number($('gen-temp').value), topP: Number($('gen-topp').value), seed: Number($('gen-seed').value), chat: $('gen-chat').checked };
  try {
    // Live rate: tokens after the first over the time since the first (the first token
    // carries the prompt's prefill).
    let first = null;
    const r = await call('generate', { prompt: $('gen-prompt').value, options }, ({ piece, elapsedS }) => {
      out.textContent += piece;
      n += 1;
      first ??= elapsedS;
      const rate = n > 1 ? `, ${((n - 1) / Math.max(elapsedS - first, 1e-3)).toFixed(2)} tokens/s decoding` : ` (first after ${elapsedS.toFixed(1)} s)`;
      $('gen-stats').textContent = `${n} tokens${rate}`;
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
const num = (id) => Number($(id).value);
const kernelSpec = {
  matmul: () => ({ op: 'matmul', m: num('k-m'), k: num('k-k'), n: num('k-n') }),
  attention: () => ({ op: 'attention', l: num('k-al'), heads: num('k-ah'), d: num('k-ad'), causal: $('k-ac').checked }),
  lsh: () => ({ op: 'lsh', l: num('k-ll'), heads: num('k-lh'), d: num('k-ld'), buckets: num('k-lb'), rounds: num('k-lr'), chunk: num('k-lc'), causal: $('k-lcausal').checked }),
  fft: () => ({ op: 'fft', batch: num('k-fb'), l: num('k-fl'), d: num('k-fd') }),
};
$('k-op').onchange = () => {
  for (const f of document.querySelectorAll('.k-fields')) f.hidden = f.dataset.op !== $('k-op').value;
};
$('k-l64k').onclick = () => {
  $('k-ll').value = 65536;
  $('k-lh').value = 1;
};
const fmt = (x, unit) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M${unit}` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k${unit}` : `${x.toPrecision(3)} ${unit}`);
function kernelRow(r) {
  const time = r.gpuMs != null ? `${r.gpuMs.toFixed(2)} ms GPU (${r.ms.toFixed(1)} ms wall)` : `${r.ms.toFixed(1)} ms wall`;
  const thr = r.tokensPerS !== undefined ? fmt(r.tokensPerS, 'tokens/s') : `${r.gflops.toFixed(2)} GFLOP/s`;
  const err = r.maxAbsErr === undefined ? '—' : `<span class="${r.withinTol ? 'ok' : 'error'}">${r.maxAbsErr.toExponential(2)} ${r.withinTol ? '✓' : '✗ over tolerance'}</span>`;
  const tol = r.tolerance ? `<span title="${r.tolerance.why}">${r.tolerance.atol.toExponential(1)}${r.tolerance.rtol ? ` + ${r.tolerance.rtol}·|want|` : ''}</span>` : '—';
  return `<td>${r.op}</td><td>${r.size}</td><td>${r.backend}</td><td>${time}</td><td>${thr}</td><td>${err}</td><td>${tol}</td><td>${r.checkedOn}</td>`;
}
async function runKernel(spec) {
  const row = document.createElement('tr');
  $('k-table').tBodies[0].prepend(row);
  row.innerHTML = `<td>${spec.op}</td><td colspan="7">running…</td>`;
  try {
    const r = await call('kernel', { spec });
    row.innerHTML = kernelRow(r);
    (window.demo.kernels ??= []).push({ spec, ...r });
    return r;
  } catch (e) {
    row.innerHTML = `<td>${spec.op}</td><td colspan="7" class="error">${e.message}</td>`;
    (window.demo.kernelErrors ??= []).push({ spec, error: e.message });
    return null;
  }
}
$('k-run').onclick = () => runKernel(kernelSpec[$('k-op').value]());

// The LSH picture: buckets and sorted order from the engine (its hash and sort kernels); the
// attention pattern is derived here from them and the chunking, as lsh_chunk_attention reads it.
const bucketColour = (b, n) => `hsl(${(360 * b) / n},70%,55%)`;
function lshPattern(p, causal) {
  const { l, chunk, before, after, perm } = p;
  const chunks = perm.length / chunk;
  const seen = new Int32Array(l * l).fill(-1); // key's (round, token) index, or -1
  for (let s = 0; s < l; s++) {
    // Round 0 occupies sorted positions 0..L-1 (its keys are the smallest).
    const q = perm[s] % l;
    const c = Math.floor(s / chunk);
    for (let cc = c - before; cc <= c + after; cc++) {
      const c2 = (cc + chunks) % chunks;
      for (let s2 = c2 * chunk; s2 < (c2 + 1) * chunk; s2++) {
        const k = perm[s2] % l;
        if (causal && k > q) continue;
        seen[q * l + k] = perm[s2];
      }
    }
  }
  return seen;
}
function drawLsh(p, causal) {
  const cv = $('k-lsh');
  const g = cv.getContext('2d');
  g.clearRect(0, 0, cv.width, cv.height);
  g.font = '13px system-ui, sans-serif';
  g.fillStyle = '#222';
  const { l, chunk, buckets, bucket, perm } = p;
  const w = Math.max(1, Math.floor(1080 / l));
  const x0 = 20;
  // 1. Tokens in order, coloured by their round-1 bucket.
  g.fillText(`1. ${l} tokens in order, coloured by bucket (${buckets} buckets, round 1 of ${p.rounds})`, x0, 16);
  for (let t = 0; t < l; t++) {
    g.fillStyle = bucketColour(bucket[t], buckets);
    g.fillRect(x0 + t * w, 24, w - (w > 3 ? 1 : 0), 22);
  }
  // 2. The sorted order, cut into chunks.
  g.fillStyle = '#222';
  g.fillText(`2. sorted by bucket (ties keep token order), cut into chunks of ${chunk}: each chunk attends to itself and the chunk before`, x0, 70);
  for (let s = 0; s < l; s++) {
    g.fillStyle = bucketColour(bucket[perm[s]], buckets);
    g.fillRect(x0 + s * w, 78, w - (w > 3 ? 1 : 0), 22);
  }
  g.fillStyle = '#000';
  for (let c = 0; c <= l / chunk; c++) g.fillRect(x0 + c * chunk * w - 1, 74, 2, 30);
  // 3-5. Attention patterns, query rows against key columns: LSH in sorted order (each
  // sorted chunk sees itself and the chunk before: a band of blocks), the same pairs in token
  // order, and dense causal attention. Whole pixels per cell, so no moiré.
  const cell = Math.max(1, Math.floor(300 / l));
  const size = cell * l;
  const top = 140;
  const seen = lshPattern(p, causal);
  const panels = [
    [x0, `3. LSH${causal ? ' (causal)' : ''}, sorted order: chunk blocks`, (s, s2) => {
      const [q, k] = [perm[s], perm[s2]];
      return seen[q * l + k] === k ? (q === k ? '#999' : bucketColour(bucket[k], buckets)) : null;
    }],
    [x0 + size + 80, '4. the same pairs in token order', (q, k) => (seen[q * l + k] < 0 ? null : q === k ? '#999' : bucketColour(bucket[seen[q * l + k]], buckets))],
    [x0 + 2 * (size + 80), '5. dense causal attention: every earlier key', (q, k) => (k <= q ? '#245' : null)],
  ];
  let used = 0;
  for (const [i, [x, title, colour]] of panels.entries()) {
    g.fillStyle = '#222';
    g.fillText(title, x, top - 8);
    g.strokeStyle = '#888';
    g.strokeRect(x - 0.5, top - 0.5, size + 1, size + 1);
    let n = 0;
    for (let q = 0; q < l; q++) {
      for (let k = 0; k < l; k++) {
        const c = colour(q, k);
        if (!c) continue;
        n++;
        g.fillStyle = c;
        g.fillRect(x + k * cell, top + q * cell, cell, cell);
      }
    }
    if (i === 0) {
      g.fillStyle = '#000';
      for (let c = 1; c < l / chunk; c++) {
        g.fillRect(x + c * chunk * cell, top + size + 2, 1, 5);
        g.fillRect(x - 7, top + c * chunk * cell, 5, 1);
      }
    }
    g.fillStyle = '#555';
    g.fillText(`query ↓  key →   ${n} of ${l * l} pairs (${((100 * n) / (l * l)).toFixed(1)}%)`, x, top + size + 20);
    if (i === 1) used = n;
  }
  return used;
}
$('k-pic').onclick = async () => {
  const spec = { l: num('k-pl'), d: 16, buckets: num('k-pb'), rounds: num('k-pr'), chunk: num('k-pc') };
  $('k-pic-status').className = 'stats';
  $('k-pic-status').textContent = 'hashing…';
  try {
    const p = await call('lshPicture', { spec });
    const pairs = drawLsh(p, $('k-lcausal').checked);
    $('k-pic-status').textContent = `buckets and order from the ${window.demo.device?.backend ?? ''} hash and sort kernels`;
    window.demo.lsh = { ...p, pairs };
  } catch (e) {
    fail($('k-pic-status'), e);
  }
};

// Profile.
// Horizontal bars of rows { label, title?, us } with the time and its share of `total`.
function barChart(el, rows, total) {
  const max = Math.max(...rows.map((r) => r.us), 1e-9);
  const time = (us) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(1)} µs`);
  el.innerHTML = rows
    .map((r) => `<div class="bar"><span class="bar-label" title="${r.title ?? r.label}">${r.label}</span><span class="bar-fill" style="width:${(55 * r.us) / max}%"></span><span class="bar-value">${time(r.us)} (${((100 * r.us) / total).toFixed(1)}%)</span></div>`)
    .join('');
}
$('prof-run').onclick = async () => {
  const status = $('prof-status');
  status.className = 'stats';
  status.textContent = 'profiling one decode step…';
  try {
    const r = await call('profile', { position: num('prof-pos') });
    if (r.rows) {
      const total = r.rows.reduce((s, x) => s + x.ns, 0);
      const byOp = new Map();
      for (const x of r.rows) byOp.set(x.op, (byOp.get(x.op) ?? 0) + x.ns);
      const ops = [...byOp].map(([op, ns]) => ({ label: `${op} ×${r.rows.filter((x) => x.op === op).length}`, us: ns / 1e3 })).sort((a, b) => b.us - a.us);
      barChart($('prof-ops'), ops, total / 1e3);
      const slow = [...r.rows].sort((a, b) => b.ns - a.ns).slice(0, 20);
      barChart($('prof-nodes'), slow.map((x) => ({ label: `#${x.node} ${x.op} [${x.shape.join('×')}]`, us: x.ns / 1e3 })), total / 1e3);
      status.textContent = `one decode step at position ${num('prof-pos')}: ${r.rows.length} kernels, ${(total / 1e6).toFixed(2)} ms of GPU time (timestamp queries, one pass per node, so slightly more than an unprofiled step)`;
      window.demo.profile = { kernels: r.rows.length, totalMs: total / 1e6, ops: ops.length };
    } else {
      $('prof-ops').innerHTML = '';
      $('prof-nodes').innerHTML = '';
      status.textContent = `Per-node GPU times are not available: ${r.reason}. Wall time per decode step: ${r.wallMsPerStep.toFixed(1)} ms.`;
      window.demo.profile = { kernels: 0, wallMsPerStep: r.wallMsPerStep };
    }
  } catch (e) {
    fail(status, e);
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
