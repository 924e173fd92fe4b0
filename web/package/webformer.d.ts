// Type declarations of the webformer package (hand-written: they describe webformer.js, the
// public API, not the generated glue underneath it).

/** What `init` accepts: a URL of the .wasm, a Response, its bytes, or a compiled module. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/**
 * Loads the WebAssembly module (by default `webformer_wasm_bg.wasm` next to webformer.js).
 * Safe to call more than once; `Engine.create` calls it too.
 */
export default function init(input?: InitInput | Promise<InitInput>): Promise<void>;

/** A file's contents: bytes, or text for the JSON files. */
export type FileData = Uint8Array | ArrayBuffer | ArrayBufferView | Blob | string;

export type BackendName = 'auto' | 'webgpu' | 'cpu';

export interface EngineOptions {
  /** 'webgpu' (rejects without WebGPU), 'cpu', or 'auto' (WebGPU if available, else CPU). Default 'auto'. */
  backend?: BackendName;
}

/** The limits webformer's graphs are planned against (WebGPU names; granted values). */
export interface AdapterLimits {
  maxBufferSize?: number;
  maxStorageBufferBindingSize?: number;
  maxComputeWorkgroupStorageSize?: number;
  maxComputeInvocationsPerWorkgroup?: number;
  maxStorageBuffersPerShaderStage?: number;
  maxComputeWorkgroupsPerDimension?: number;
  minUniformBufferOffsetAlignment?: number;
}

export interface AdapterInfo {
  /** The adapter's name (browsers may hide it), or the CPU executor's. */
  name: string;
  /** The backend the engine runs on. */
  backend: 'webgpu' | 'cpu';
  /** True on a software fallback adapter (e.g. SwiftShader). */
  fallback: boolean;
  /** Features webformer uses that the device has: 'shader-f16', 'subgroups', 'timestamp-query'. */
  features: string[];
  limits: AdapterLimits;
  /** wgpu's device type ('DiscreteGpu', 'IntegratedGpu', 'Cpu', 'Other', ...). */
  deviceType: string;
  /** WebGPU: a one-line description (name, backend, type, driver). */
  driver?: string;
  /** WebGPU: every feature the browser's adapter offers. */
  allFeatures?: string[];
  vendor?: string;
  architecture?: string;
  /** WebGPU: the [min, max] subgroup size. */
  subgroupSize?: [number, number];
  /** CPU chosen by 'auto': why WebGPU was not used. */
  reason?: string | null;
}

/** A Llama GGUF file (SmolLM2 and other 'llama' architecture decoders). */
export interface GgufSpec extends LoadOptions {
  gguf: FileData;
}

/** A sentence-transformers BERT folder's files. */
export interface BertSpec extends LoadOptions {
  /** config.json */
  config: FileData;
  /** model.safetensors */
  weights: FileData;
  /** tokenizer.json */
  tokenizer: FileData;
  /** sentence_bert_config.json (with `pooling`; without both: mean pooling, normalised, 512 tokens). */
  sentenceConfig?: FileData;
  /** 1_Pooling/config.json */
  pooling?: FileData;
  /** modules.json (a Normalize module turns normalisation on). */
  modules?: FileData;
}

export interface LoadOptions {
  /** Decoders: positions of the KV cache (prompt plus new tokens). Default min(2048, the model's). */
  context?: number;
  /** Decoders: keep the k most likely tokens when sampling (0: all). Fixed at load. */
  topK?: number;
  /** Decoders: nucleus sampling threshold in (0, 1] (1: all). Fixed at load. */
  topP?: number;
  /** The file (or folder) name used in error messages. */
  name?: string;
}

export interface GenerateOptions {
  /** New tokens at most (default 64; capped to the room left in the context). */
  maxTokens?: number;
  /** 0 (default) is greedy; otherwise a finite number > 0. */
  temperature?: number;
  /** Seed of the sampler: the same seed gives the same text. Default 0. */
  seed?: number;
  /** Wrap the prompt in the model's chat template as a user message. */
  chat?: boolean;
  /** System message for `chat` (default: the template's own). */
  system?: string;
  /** Stop after the end-of-sequence token (default true). */
  stopAtEos?: boolean;
  /** Must equal the value given to `engine.load` (sampling filters are fixed there). */
  topK?: number;
  topP?: number;
  /** Aborting it stops generation after the current token. */
  signal?: AbortSignal;
}

export interface GenerateStats {
  promptTokens: number;
  generatedTokens: number;
  promptSetupS: number;
  prefillS: number;
  decodeS: number;
  prefillTokensPerS: number;
  decodeTokensPerS: number;
}

export interface GenerateResult {
  /** The generated ids (not the prompt's; the end-of-sequence token included when it stopped). */
  ids: number[];
  /** Their text, special tokens left out. */
  text: string;
  /** The prompt's ids (after the chat template, when `chat`). */
  promptIds: number[];
  stoppedAtEos: boolean;
  /** True when `signal` stopped it. */
  aborted: boolean;
  stats: GenerateStats;
}

export interface ForwardResult {
  /** [T, vocab] logits for a decoder; [T, hidden] last hidden state for an encoder. */
  shape: number[];
  data: Float32Array;
}

export interface ModelInfo {
  kind: 'llama' | 'bert';
  backend: 'webgpu' | 'cpu';
  layers: number;
  hidden: number;
  heads: number;
  vocab: number;
  /** Positions a call may use. */
  context: number;
  weightBytes: number;
  kvHeads?: number;
  modelContext?: number;
  chatTemplate?: boolean;
}

export interface ProfileRow {
  /** Node index in the decode graph. */
  node: number;
  /** The op's name. */
  op: string;
  /** The node's output shape. */
  shape: number[];
  /** GPU time in nanoseconds. */
  ns: number;
}

export interface Profile {
  rows: ProfileRow[];
}

/** A compute backend and the models loaded on it. */
export class Engine {
  private constructor();
  static create(options?: EngineOptions): Promise<Engine>;
  readonly adapter: Readonly<AdapterInfo>;
  load(spec: GgufSpec | BertSpec): Promise<Model>;
  /** a [m, k] · b [k, n] -> [m, n], row-major, on this engine's backend. */
  matmul(a: Float32Array | number[], b: Float32Array | number[], m: number, k: number, n: number): Promise<Float32Array>;
  /** The same on webformer's CPU reference (float64 accumulation). */
  matmulReference(a: Float32Array | number[], b: Float32Array | number[], m: number, k: number, n: number): Promise<Float32Array>;
  /**
   * One kernel at a chosen size on this backend: timed (a warm-up run first) and checked
   * against the CPU reference of the same graph. Inputs are seeded random in [-1, 1).
   */
  kernel(spec: KernelSpec): Promise<KernelResult>;
  /** Buckets and sorted order of one LSH head, from the hash and sort ops LSH attention runs. */
  lshPicture(spec?: { l?: number; d?: number; buckets?: number; rounds?: number; chunk?: number }): Promise<LshPicture>;
  free(): void;
}

/** A loaded model. Calls on one model run one after another, in the order made. */
export class Model {
  private constructor();
  readonly info: Readonly<ModelInfo>;
  generate(prompt: string, options?: GenerateOptions, onPiece?: (piece: string, id: number) => boolean | void): Promise<GenerateResult>;
  embed(texts: string[]): Promise<Float32Array[]>;
  forward(ids: ArrayLike<number>): Promise<ForwardResult>;
  encode(text: string): Promise<number[]>;
  decode(ids: ArrayLike<number>): Promise<string>;
  /** Per-node GPU times of one decode step at `position` (WebGPU with timestamp queries). */
  profileDecode(position?: number): Promise<Profile>;
  free(): void;
}

/** A kernel benchmark: the op and its sizes. */
export type KernelSpec =
  | { op: 'matmul'; m: number; k: number; n: number }
  /** Fused dense attention, q, k, v [l, heads, d] (d a multiple of 4, at most 256). */
  | { op: 'attention'; l: number; heads: number; d: number; causal?: boolean }
  /** Reformer LSH attention, qk, v [heads, l, d] (d a multiple of 4, at most 128; l a multiple of chunk). Chunks look one chunk back. */
  | { op: 'lsh'; l: number; heads: number; d: number; buckets: number; rounds: number; chunk: number; causal?: boolean }
  /** FNet mixing, Re(FFT2) of x [batch, l, d]. */
  | { op: 'fft'; batch: number; l: number; d: number };

/** The outcome of `engine.kernel`. */
export interface KernelResult {
  op: 'matmul' | 'attention' | 'lsh_attention' | 'fourier_mix';
  /** The size as text, e.g. "L=256 H=4 d=64 causal". */
  size: string;
  backend: 'webgpu' | 'cpu';
  /** Wall time of one run, submit to read-back, in ms. */
  ms: number;
  /** GPU time of the pass from timestamp queries, or null where the adapter has none. */
  gpuMs: number | null;
  /** 'GPU timestamps' or 'wall clock': which time the throughput uses. */
  timing: string;
  /** Floating-point work of one run (the count GFLOP/s uses). */
  flops: number;
  /** matmul and attention: GFLOP/s. */
  gflops?: number;
  /** lsh (heads × tokens) and fft (batch × tokens): tokens per second. */
  tokensPerS?: number;
  /** 'the same size', a smaller size the CPU reference checked instead, or why none was made. */
  checkedOn: string;
  /** WebGPU only: max |GPU - CPU reference| over the checked outputs. */
  maxAbsErr?: number;
  /** WebGPU only: the allowed error, |got - want| <= atol + rtol·|want|, and why. */
  tolerance?: { atol: number; rtol: number; why: string };
  /** WebGPU only: the largest error over its allowance (<= 1 is within tolerance). */
  errOverTol?: number;
  withinTol?: boolean;
}

/** The outcome of `engine.lshPicture`: one head's hashing. */
export interface LshPicture {
  l: number;
  chunk: number;
  /** Chunks each chunk also attends to before and after it. */
  before: number;
  after: number;
  /** Buckets per round. */
  buckets: number;
  rounds: number;
  /** bucket[r·L + t]: the bucket of token t in round r. */
  bucket: number[];
  /** perm[s] = r·L + t: the (round, token) at sorted position s (rounds in order, ties by token). */
  perm: number[];
}
