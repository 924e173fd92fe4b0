// The demo's engine, in a Web Worker so the page never freezes (the CPU backend computes for
// seconds at a time). Messages in: { id, cmd, ...args }; out: { id, ok, value | error } and,
// while generating, { id, piece, tokenId, elapsedS }.

import init, { Engine } from '../pkg/webformer.js';

let engine = null;
const models = {};
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
    return models[slot].info;
  },
  async generate({ id, prompt, options }) {
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
  async matmul({ m, k, n }) {
    const rand = (len, seed) => {
      const a = new Float32Array(len);
      let s = seed >>> 0;
      for (let i = 0; i < len; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        a[i] = s / 2 ** 32 - 0.5;
      }
      return a;
    };
    const a = rand(m * k, 1);
    const b = rand(k * n, 2);
    await engine.matmul(a.subarray(0, k), b, 1, k, n); // compiles the pipeline outside the timing
    const t0 = performance.now();
    const got = await engine.matmul(a, b, m, k, n);
    const ms = performance.now() - t0;
    const want = await engine.matmulReference(a, b, m, k, n);
    let maxErr = 0;
    for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
    return { ms, gflops: (2 * m * k * n) / (ms * 1e6), maxErr, backend: engine.adapter.backend };
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
