// webformer: transformers on WebGPU in the browser (and on a CPU executor where WebGPU is
// missing). This module is the package's public API; webformer_wasm.js is the generated glue
// of the Rust library underneath it. Every call documented in README.md and webformer.d.ts.

import wasmInit, { RawEngine } from './webformer_wasm.js';

let ready = null;
let broken = null;

/**
 * Loads the WebAssembly module: from `webformer_wasm_bg.wasm` next to this file, or from the
 * URL, Response, bytes or WebAssembly.Module given. Safe to call more than once.
 */
export default function init(input) {
  if (!ready) {
    const arg = input === undefined ? undefined : { module_or_path: input };
    ready = wasmInit(arg).then(
      () => undefined,
      (e) => {
        ready = null;
        throw toError(e, 'init');
      },
    );
  }
  return ready;
}

/** An Error with webformer's sentence; a wasm trap (a bug) becomes a sentence too. */
function toError(e, where) {
  if (e instanceof WebAssembly.RuntimeError) {
    broken = `webformer stopped inside its WebAssembly module during ${where} (a bug; the panic message is in the console); reload the page to use it again`;
    return new Error(broken);
  }
  if (e instanceof Error) return e;
  return new Error(typeof e === 'string' ? e : `${where} failed: ${String(e)}`);
}

/** Runs `fn`, turning what it throws (or rejects with) into a rejected Promise of an Error. */
async function guarded(where, fn) {
  if (broken) throw new Error(broken);
  try {
    return await fn();
  } catch (e) {
    throw toError(e, where);
  }
}

function checkKeys(obj, allowed, where) {
  if (obj === undefined || obj === null) return {};
  if (typeof obj !== 'object' || Array.isArray(obj)) {
    throw new Error(`${where}: options must be an object, got ${Array.isArray(obj) ? 'an array' : typeof obj}`);
  }
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      throw new Error(`${where}: unknown option '${k}'; the options are ${allowed.join(', ')}`);
    }
  }
  return obj;
}

/** Uint8Array of a file given as Uint8Array, ArrayBuffer, typed array view, Blob/File or string. */
async function toBytes(value, what) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (typeof Blob !== 'undefined' && value instanceof Blob) return new Uint8Array(await value.arrayBuffer());
  if (typeof value === 'string') return new TextEncoder().encode(value);
  throw new Error(`engine.load: ${what} must be a Uint8Array, ArrayBuffer, Blob or string, got ${value === null ? 'null' : typeof value}`);
}

/** The browser's own view of its WebGPU adapter: fallback or not, every feature. */
async function browserAdapter() {
  try {
    const a = await globalThis.navigator?.gpu?.requestAdapter();
    if (!a) return {};
    const info = a.info ?? {};
    return {
      fallback: Boolean(info.isFallbackAdapter ?? a.isFallbackAdapter ?? false),
      allFeatures: [...a.features].sort(),
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
    };
  } catch {
    return {};
  }
}

const BACKENDS = ['auto', 'webgpu', 'cpu'];

/** A compute backend (WebGPU or the CPU executor) and the models loaded on it. */
export class Engine {
  #raw;

  /** Use `Engine.create`. */
  constructor(raw, adapter) {
    if (!(raw instanceof RawEngine)) throw new Error('use `await Engine.create(...)` to make an Engine');
    this.#raw = raw;
    /** `{ name, backend: 'webgpu' | 'cpu', fallback, features, limits, ... }` */
    this.adapter = Object.freeze(adapter);
  }

  /** Opens a backend: 'webgpu', 'cpu', or 'auto' (WebGPU when there is an adapter, else CPU). */
  static async create(options = {}) {
    return guarded('Engine.create', async () => {
      const o = checkKeys(options, ['backend'], 'Engine.create');
      const backend = o.backend ?? 'auto';
      if (!BACKENDS.includes(backend)) {
        throw new Error(`Engine.create: backend '${backend}' is unknown; use 'webgpu', 'cpu' or 'auto'`);
      }
      await init();
      const raw = await RawEngine.create(backend);
      const adapter = JSON.parse(raw.adapterJson());
      if (adapter.backend === 'webgpu') Object.assign(adapter, { fallback: false }, await browserAdapter());
      else adapter.fallback = false;
      return new Engine(raw, adapter);
    });
  }

  /**
   * Loads a model: `{ gguf }` (a Llama GGUF file) or `{ config, weights, tokenizer }` (a
   * sentence-transformers BERT folder's config.json, model.safetensors and tokenizer.json;
   * optionally `sentenceConfig`, `pooling` and `modules`). Options: `context`, `topK`, `topP`
   * (decoders), `name` (the file named in errors).
   */
  async load(spec) {
    return guarded('engine.load', async () => {
      const keys = ['gguf', 'config', 'weights', 'tokenizer', 'sentenceConfig', 'pooling', 'modules', 'context', 'topK', 'topP', 'name'];
      const s = checkKeys(spec, keys, 'engine.load');
      const options = JSON.stringify({ context: s.context, topK: s.topK, topP: s.topP, name: s.name });
      const raw = this.#live();
      let model;
      if (s.gguf !== undefined) {
        for (const k of ['config', 'weights', 'tokenizer', 'sentenceConfig', 'pooling', 'modules']) {
          if (s[k] !== undefined) throw new Error(`engine.load: give { gguf } or { config, weights, tokenizer }, not both (${k} was given with gguf)`);
        }
        model = raw.loadGguf(await toBytes(s.gguf, 'gguf'), options);
      } else if (s.config !== undefined || s.weights !== undefined || s.tokenizer !== undefined) {
        for (const k of ['config', 'weights', 'tokenizer']) {
          if (s[k] === undefined) throw new Error(`engine.load: a BERT folder needs config, weights and tokenizer; ${k} is missing`);
        }
        const opt = async (k, file) => (s[k] === undefined ? undefined : toBytes(s[k], `${k} (${file})`));
        model = raw.loadBert(
          await toBytes(s.config, 'config (config.json)'),
          await toBytes(s.weights, 'weights (model.safetensors)'),
          await toBytes(s.tokenizer, 'tokenizer (tokenizer.json)'),
          await opt('sentenceConfig', 'sentence_bert_config.json'),
          await opt('pooling', '1_Pooling/config.json'),
          await opt('modules', 'modules.json'),
          options,
        );
      } else {
        throw new Error('engine.load: give { gguf: bytes } or { config, weights, tokenizer }');
      }
      return new Model(model);
    });
  }

  /** a [m, k] · b [k, n] -> [m, n] (row-major Float32Arrays) on this engine's backend. */
  async matmul(a, b, m, k, n) {
    return guarded('engine.matmul', async () => this.#live().matmul(f32(a, 'a'), f32(b, 'b'), dim(m, 'm'), dim(k, 'k'), dim(n, 'n')));
  }

  /** The same product on webformer's CPU reference (float64 accumulation), whatever the backend. */
  async matmulReference(a, b, m, k, n) {
    return guarded('engine.matmulReference', async () =>
      this.#live().matmulReference(f32(a, 'a'), f32(b, 'b'), dim(m, 'm'), dim(k, 'k'), dim(n, 'n')));
  }

  /**
   * Runs one kernel at a chosen size on this engine's backend, timed, and checked against the
   * CPU reference running the same graph (on a smaller size when the full one would take the
   * CPU too long; `checkedOn` says which). `spec`: `{ op: 'matmul', m, k, n }`,
   * `{ op: 'attention', l, heads, d, causal }`, `{ op: 'lsh', l, heads, d, buckets, rounds,
   * chunk, causal }` or `{ op: 'fft', batch, l, d }`. Inputs are seeded random in [-1, 1).
   */
  async kernel(spec) {
    return guarded('engine.kernel', async () => {
      const ops = { matmul: ['m', 'k', 'n'], attention: ['l', 'heads', 'd', 'causal'], lsh: ['l', 'heads', 'd', 'buckets', 'rounds', 'chunk', 'causal'], fft: ['batch', 'l', 'd'] };
      if (!spec || typeof spec !== 'object' || !(spec.op in ops)) {
        throw new Error(`engine.kernel: spec.op must be one of ${Object.keys(ops).join(', ')}, got ${spec?.op}`);
      }
      checkKeys(spec, ['op', ...ops[spec.op]], `engine.kernel (${spec.op})`);
      for (const k of ops[spec.op]) {
        if (k === 'causal') spec = { ...spec, causal: Boolean(spec.causal) };
        else dim(spec[k], k, `engine.kernel (${spec.op})`);
      }
      return JSON.parse(await this.#live().kernel(JSON.stringify(spec)));
    });
  }

  /**
   * What LSH attention does to one head of `l` tokens (for a picture): the bucket of every
   * (round, token) and the stable sorted order, from the same hash and sort ops LSH attention
   * runs. Resolves to `{ l, chunk, before, after, buckets, rounds, bucket: number[R·L],
   * perm: number[R·L] }`; perm[s] = r·L + t is the token at sorted position s.
   */
  async lshPicture({ l = 64, d = 16, buckets = 8, rounds = 2, chunk = 8 } = {}) {
    return guarded('engine.lshPicture', async () => {
      for (const [k, v] of Object.entries({ l, d, buckets, rounds, chunk })) dim(v, k, 'engine.lshPicture');
      return JSON.parse(await this.#live().lshPicture(JSON.stringify({ l, d, buckets, rounds, chunk })));
    });
  }

  /** Releases the engine (models already loaded keep working until freed). */
  free() {
    if (this.#raw) this.#raw.free();
    this.#raw = null;
  }

  #live() {
    if (!this.#raw) throw new Error('this engine was freed');
    return this.#raw;
  }
}

function f32(v, what) {
  if (v instanceof Float32Array) return v;
  if (Array.isArray(v)) return Float32Array.from(v);
  throw new Error(`matmul: ${what} must be a Float32Array or an array of numbers`);
}

function dim(v, what, where = 'matmul') {
  if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) throw new Error(`${where}: ${what} must be a positive integer, got ${v}`);
  return v;
}

const GENERATE_KEYS = ['maxTokens', 'temperature', 'topK', 'topP', 'seed', 'chat', 'system', 'stopAtEos', 'signal'];

/** A loaded model. Calls on one model run one after another (a second call waits its turn). */
export class Model {
  #raw;
  #queue = Promise.resolve();

  constructor(raw) {
    this.#raw = raw;
    /** `{ kind: 'llama' | 'bert', backend, layers, hidden, vocab, context, ... }` */
    this.info = Object.freeze(JSON.parse(raw.infoJson()));
  }

  /** Queues `fn` after the calls already made on this model. */
  #run(where, fn) {
    const p = this.#queue.then(() => guarded(where, () => fn(this.#live())));
    this.#queue = p.catch(() => {});
    return p;
  }

  #live() {
    if (!this.#raw) throw new Error('this model was freed');
    return this.#raw;
  }

  /**
   * Generates text after `prompt`. `onPiece(text, id)` gets each new token as it is made
   * (return false, or abort `options.signal`, to stop). Resolves to
   * `{ ids, text, promptIds, stoppedAtEos, aborted, stats }`.
   */
  generate(prompt, options = {}, onPiece = undefined) {
    return this.#run('model.generate', async (raw) => {
      if (typeof prompt !== 'string') throw new Error(`model.generate: the prompt must be a string, got ${prompt === null ? 'null' : typeof prompt}`);
      const o = checkKeys(options, GENERATE_KEYS, 'model.generate');
      if (onPiece !== undefined && typeof onPiece !== 'function') throw new Error('model.generate: onPiece must be a function');
      const { signal, ...rest } = o;
      if (signal?.aborted) throw new Error('model.generate: the signal was aborted before generation started');
      // Checked after onPiece too, so an abort from inside it stops before the next token.
      const piece = (text, id) => {
        if (signal?.aborted) return false;
        const go = onPiece ? onPiece(text, id) : true;
        return signal?.aborted ? false : go;
      };
      const r = await raw.generate(prompt, JSON.stringify(rest), piece);
      r.aborted = Boolean(signal?.aborted);
      return r;
    });
  }

  /** Sentence embeddings (an encoder): one Float32Array per text, normalised as the model says. */
  embed(texts) {
    return this.#run('model.embed', async (raw) => {
      if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) {
        throw new Error('model.embed: give an array of strings');
      }
      return raw.embed(texts);
    });
  }

  /** The final output for token ids: `{ shape: [T, vocab or hidden], data: Float32Array }`. */
  forward(ids) {
    return this.#run('model.forward', async (raw) => {
      const arr = ids instanceof Uint32Array ? ids : Array.isArray(ids) ? ids : null;
      if (!arr || !Array.from(arr).every((i) => Number.isInteger(i) && i >= 0 && i <= 0xffffffff)) {
        throw new Error('model.forward: give an array of token ids (integers >= 0)');
      }
      return raw.forward(Uint32Array.from(arr));
    });
  }

  /** Token ids of `text` (with the special tokens the model adds). */
  encode(text) {
    return this.#run('model.encode', async (raw) => {
      if (typeof text !== 'string') throw new Error('model.encode: the text must be a string');
      return Array.from(raw.encode(text));
    });
  }

  /** The text of token ids (special tokens left out). */
  decode(ids) {
    return this.#run('model.decode', async (raw) => raw.decode(Uint32Array.from(ids)));
  }

  /** Per-node GPU times of one decode step (WebGPU with timestamp queries): `{ rows, ... }`. */
  profileDecode(position = 0) {
    return this.#run('model.profileDecode', async (raw) => JSON.parse(await raw.profileDecode(position)));
  }

  /** Releases the model's GPU and host memory. */
  free() {
    if (this.#raw) this.#raw.free();
    this.#raw = null;
  }
}
