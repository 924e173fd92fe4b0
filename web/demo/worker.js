// The demo's engine, in a Web Worker so the page never freezes (the CPU backend computes for
// seconds at a time). Messages in: { id, cmd, ...args }; out: { id, ok, value | error } and,
// while generating, { id, piece, tokenId, elapsedS }.

import init, { Engine } from '../pkg/webformer.js';

let engine = null;
const models = {};
const specs = {};
let stopper = null;

const commands = {
  async create({ backend }) {
    await init();
    engine?.free();
    for (const k of Object.keys(models)) {
      models[k].free();
      delete models[k];
    }
    engine = await Engine.create({ backend });
    return engine.adapter;
  },
  async load({ slot, spec }) {
    models[slot]?.free();
    delete models[slot];
    models[slot] = await engine.load(spec);
    specs[slot] = spec;
    return models[slot].info;
  },
  async generate({ id, prompt, options }) {
    // top-p is compiled into the decode graph when a model loads: a new value rebuilds it
    // from the bytes kept here (the weights upload again; the file is not read again).
    const { topP, ...rest } = options;
    if ((specs.llm.topP ?? 1) !== (topP ?? 1)) await commands.load({ slot: 'llm', spec: { ...specs.llm, topP } });
    options = rest;
    stopper = new AbortController();
    const t0 = performance.now();
    const r = await models.llm.generate(prompt, { ...options, signal: stopper.signal }, (piece, tokenId) => {
      postMessage({ id, piece, tokenId, elapsedS: (performance.now() - t0) / 1000 });
    });
    stopper = null;
    return r;
  },
  async stop() {
    stopper?.abort();
    return true;
  },
  async embed({ texts }) {
    const t0 = performance.now();
    const vecs = await models.enc.embed(texts);
    return { vecs, ms: performance.now() - t0 };
  },
  async kernel({ spec }) {
    return engine.kernel(spec);
  },
  async lshPicture({ spec }) {
    return engine.lshPicture(spec);
  },
  // Per-node GPU times of one decode step; without timestamp queries, the wall time of a
  // decode step from a short greedy generation instead.
  async profile({ position }) {
    if (!models.llm) throw new Error('load a GGUF model in the Generate panel first');
    if (engine.adapter.features.includes('timestamp-query')) return models.llm.profileDecode(position);
    const r = await models.llm.generate('Hello', { maxTokens: 4, temperature: 0 });
    const reason = engine.adapter.backend === 'webgpu' ? 'this adapter has no timestamp-query feature' : 'the CPU backend has no GPU timestamps';
    return { rows: null, reason, wallMsPerStep: 1000 / r.stats.decodeTokensPerS };
  },
};

onmessage = async ({ data }) => {
  const { id, cmd, ...args } = data;
  try {
    const value = await commands[cmd]({ id, ...args });
    postMessage({ id, ok: true, value });
  } catch (e) {
    postMessage({ id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
};
