//! The `webformer` command line. The only place that blocks on futures natively.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};

#[path = "cli/models.rs"]
mod models;
#[path = "cli/reformer.rs"]
mod reformer;
use webformer::bench::values;
use webformer::{gpu, Context, ContextOptions, CpuExecutor, DType, GpuExecutor, Graph, HostData};

#[derive(Parser)]
#[command(name = "webformer", version, about = "Portable GPU compute engine for transformers (wgpu/WebGPU)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate text with a decoder GGUF (default: SmolLM2-135M-Instruct, fetched into the
    /// cache on first use) or a Reformer LM folder. Streams the text to stdout; load and speed
    /// figures go to stderr. Reformer: greedy only, cached as transformers' generate(use_cache=True)
    /// unless --no-cache (each step then recomputes the forward over the whole prefix, as
    /// use_cache=False); a byte-level vocabulary (258 ids) maps a prompt's UTF-8
    /// bytes to byte + 2 and prints the bytes generated; other vocabularies take --ids and print
    /// ids.
    Generate {
        /// GGUF file of a Llama-architecture model, or a Reformer LM folder.
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        /// Reformer: the prompt as token ids, comma-separated (instead of --prompt).
        #[arg(long, value_delimiter = ',')]
        ids: Vec<u32>,
        /// Reformer: LSH rotations (safetensors, `layers.{i}.rotations`); without it they come
        /// from webformer's seeded generator.
        #[arg(long)]
        lsh_rotations: Option<std::path::PathBuf>,
        /// The prompt (read from stdin when absent).
        #[arg(long)]
        prompt: Option<String>,
        /// New tokens at most (generation also stops at the end-of-sequence token).
        #[arg(long, default_value_t = 64)]
        max_tokens: usize,
        /// Sampling temperature; 0 is greedy (the most likely token every step).
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        temperature: f32,
        /// Sample among the k most likely tokens only (0: no limit).
        #[arg(long, default_value_t = 0)]
        top_k: u32,
        /// Sample from the smallest set of tokens whose probability reaches p (1: no limit).
        #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
        top_p: f32,
        /// Seed of the sampler: the same seed gives the same text.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Wrap the prompt in the model's chat template as a user message.
        #[arg(long)]
        chat: bool,
        /// System message for --chat (default: the template's own).
        #[arg(long)]
        system: Option<String>,
        /// Positions of the KV cache (prompt plus new tokens); at most the model's context.
        #[arg(long, default_value_t = 2048)]
        context: usize,
        /// Keep the KV cache in f16 (half the memory; needs the shader-f16 feature).
        #[arg(long)]
        kv_f16: bool,
        /// Reformer: recompute the whole forward over the prefix every step, as Hugging Face's
        /// generate(use_cache=False), instead of single-token steps over cached buckets and
        /// states (HF's use_cache=True); the two modes' LSH windows differ, so can their text.
        #[arg(long)]
        no_cache: bool,
        /// Print {"prompt_ids", "ids", "text"} at the end instead of streaming.
        #[arg(long)]
        json: bool,
    },
    /// Sentence embeddings with a sentence-transformers BERT folder (default:
    /// all-MiniLM-L6-v2, fetched on first use): a JSON array, one normalised vector per text.
    Embed {
        /// Model folder (config.json, model.safetensors, tokenizer.json, ...).
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        /// Texts to embed.
        texts: Vec<String>,
    },
    /// The model's final output for token ids, as JSON {"shape", "data"}: logits [T, vocab]
    /// for a decoder GGUF, the last hidden state [T, hidden] for a BERT folder; for a Reformer
    /// folder, logits [T, vocab] (LM head) or the last hidden state [T, 2·hidden].
    Forward {
        /// GGUF file, BERT folder or Reformer folder (default: SmolLM2).
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        /// Token ids, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        ids: Vec<u32>,
        /// Reformer: LSH rotations (safetensors, `layers.{i}.rotations`), e.g. the ones
        /// Hugging Face drew; without it they come from webformer's seeded generator.
        #[arg(long)]
        lsh_rotations: Option<std::path::PathBuf>,
    },
    /// List every GPU adapter with backend, type, driver, features and the limits that matter.
    Info {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a small transformer-style MLP block on the GPU and check it against the CPU reference.
    Demo {
        /// Rows (tokens) of the input.
        #[arg(long, default_value_t = 64)]
        tokens: usize,
        /// Model width.
        #[arg(long, default_value_t = 96)]
        hidden: usize,
    },
    /// Benchmarks (GPU timestamps where the adapter has them; medians of repeats). Either a
    /// suite (`bench --suite all --json FILE`: fixed sizes, one JSON schema shared with
    /// scripts/bench_torch.py) or one benchmark with its own options (`bench gemm ...`).
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        which: Option<Bench>,
        /// The suite to run: kernels, attention, lsh, fft, decode or all.
        #[arg(long)]
        suite: Option<String>,
        /// Write the suite's JSON here (a table goes to stdout either way).
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// One small size per benchmark: a smoke run of the suite.
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value_t = 5)]
        repeats: usize,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Text generation with a real model: load time, GPU memory, prefill and decode tokens/s,
    /// GPU time per op of one decode step.
    Generate {
        /// GGUF file (default: SmolLM2-135M-Instruct, fetched into the cache when absent).
        #[arg(long, conflicts_with = "synthetic")]
        model: Option<std::path::PathBuf>,
        /// Instead of a file: a model of a real one's exact shapes and GGUF types with seeded
        /// random weights, built in memory (speed does not depend on the values): smollm2-135m.
        #[arg(long)]
        synthetic: Option<String>,
        #[arg(long, default_value_t = 512)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128)]
        decode_tokens: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Also time one prompt pass node by node (GPU timestamps; one more prefill).
        #[arg(long)]
        profile_prefill: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Dispatch overhead: a chain of tiny elementwise nodes, run as one plan.
    Dispatch {
        #[arg(long, default_value_t = 500)]
        nodes: usize,
        /// Elements per tensor.
        #[arg(long, default_value_t = 256)]
        elements: usize,
        #[arg(long, default_value_t = 50)]
        repeats: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Model loading on the host (no GPU): read + parse a GGUF, copy its tensors out, build its
    /// tokenizer, tokenize text.
    Load {
        /// GGUF file (default: SmolLM2 in the cache of scripts/fetch-models.sh).
        #[arg(long)]
        model: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Bytes of text to tokenize.
        #[arg(long, default_value_t = 100_000)]
        text_bytes: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Matmul throughput (GFLOP/s) of the naive kernel and the tuned GEMM kernels, square sizes.
    Gemm {
        /// Sizes n of the n x n x n products, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [256, 512, 1024, 2048])]
        sizes: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Layouts of B: nn (a · b), nt (a · bᵀ, linear layers), or both.
        #[arg(long, value_delimiter = ',', default_values_t = ["nn".to_string(), "nt".to_string()])]
        layouts: Vec<String>,
        /// Largest size the (slow) naive baseline runs at.
        #[arg(long, default_value_t = 1024)]
        naive_max: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// FNet Fourier mixing (Re(FFT2) of [L, hidden]) against fused bidirectional attention.
    Fft {
        /// Sequence lengths (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [512, 4096])]
        lens: Vec<usize>,
        #[arg(long, default_value_t = 768)]
        hidden: usize,
        #[arg(long, default_value_t = 12)]
        heads: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Longest L at which attention is timed too (dense, it grows as L²).
        #[arg(long, default_value_t = 4096)]
        attention_max: usize,
        /// Longest L at which the DFT-as-matmul path of mixing is timed too (it grows as L²).
        #[arg(long, default_value_t = 2048)]
        dft_max: usize,
        /// Repeats of the attention runs (default: --repeats).
        #[arg(long)]
        attention_repeats: Option<usize>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A long-context Reformer forward pass: a synthetic model of google/reformer-enwik8's
    /// shape (12 layers, hidden 1024, 8 heads, 4 hashes, 512 buckets, chunks 256/128; seeded
    /// random weights) over --len byte ids; time and peak GPU memory. On a real GPU:
    /// `webformer bench reformer --synthetic enwik8 --len 65536`.
    Reformer {
        /// The model shape: enwik8.
        #[arg(long, default_value = "enwik8")]
        synthetic: String,
        /// Tokens (up to 65536, the model's positions).
        #[arg(long, default_value_t = 65536)]
        len: usize,
        /// Feed-forward chunk in rows (0: whole); bounds the [len, 4096] intermediate.
        #[arg(long, default_value_t = 4096)]
        ff_chunk: usize,
        #[arg(long, default_value_t = 1)]
        repeats: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Reformer's LSH attention against fused dense causal attention over sequence length,
    /// with each plan's peak GPU memory.
    Lsh {
        /// Sequence lengths (comma-separated; multiples of --chunk).
        #[arg(long, value_delimiter = ',', default_values_t = [1024, 4096, 16384])]
        lens: Vec<usize>,
        #[arg(long, default_value_t = 8)]
        heads: usize,
        #[arg(long, default_value_t = 64)]
        head_dim: usize,
        /// Hashing rounds.
        #[arg(long, default_value_t = 4)]
        rounds: usize,
        #[arg(long, default_value_t = 64)]
        chunk: usize,
        /// Longest length also run through dense attention.
        #[arg(long, default_value_t = 4096)]
        dense_max: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Also time each LSH node once and print where the time goes.
        #[arg(long)]
        profile: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Fused attention: causal prefill (vs the composite of primitives where it fits) and
    /// decode steps over a KV cache.
    Attention {
        #[arg(long, default_value_t = 12)]
        heads: usize,
        /// KV heads (fewer than --heads for grouped-query attention).
        #[arg(long, default_value_t = 12)]
        kv_heads: usize,
        #[arg(long, default_value_t = 64)]
        head_dim: usize,
        /// Prefill lengths (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [512, 2048])]
        prefill: Vec<usize>,
        /// Also prefill at 4096 and 16384 (slow on software GPUs).
        #[arg(long)]
        large: bool,
        /// KV cache lengths of the decode steps (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [128, 1024, 8192])]
        decode: Vec<usize>,
        /// Longest prefill also timed through the composite path ([H, L, L] scores; its naive
        /// matmuls are slow on software GPUs).
        #[arg(long, default_value_t = 512)]
        composite_max: usize,
        /// Parts the decode kernel splits the cache into (default: the device's choice).
        #[arg(long)]
        splits: Option<u32>,
        /// Keys, values and the decode KV cache in f16 (needs shader-f16).
        #[arg(long)]
        kv_f16: bool,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Decode GEMV (one row times a weight) on SmolLM2-135M's shapes for f32, f16, Q8_0 and
    /// Q4_1 weights, against the naive matmul: GB/s of weights read and microseconds; plus
    /// the tiled quantized matmul on 64-token prefill shapes.
    Gemv {
        #[arg(long, default_value_t = 30)]
        repeats: usize,
        /// Decode shapes as KxN (input width x output rows), comma-separated; SmolLM2's by default.
        #[arg(long, value_delimiter = ',', value_parser = parse_shape)]
        shapes: Vec<(usize, usize)>,
        /// Only the kernels whose label contains this text (e.g. "q4_1", "gemv q8_0").
        #[arg(long, default_value = "")]
        only: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Norms, rope, argmax and sampling at SmolLM2-135M decode sizes, with the logits
    /// readback that GPU sampling replaces as the baseline.
    Ops {
        #[arg(long, default_value_t = 20)]
        repeats: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Exit status when stdout was closed by its reader: 128 + SIGPIPE, what a shell reports for
/// a program stopped by a closed pipe (`webformer generate ... | head -c 1`).
const EXIT_OUTPUT_CLOSED: u8 = 141;

fn main() -> ExitCode {
    // Before any thread exists: it may set an environment variable (see its doc).
    gpu::ensure_runtime_dir();
    let cli = Cli::parse();
    let result = pollster::block_on(async {
        match cli.command {
            Command::Generate {
                model,
                ids,
                lsh_rotations,
                prompt,
                max_tokens,
                temperature,
                top_k,
                top_p,
                seed,
                chat,
                system,
                context,
                kv_f16,
                no_cache,
                json,
            } => {
                let args = models::GenerateArgs {
                    model,
                    ids,
                    lsh_rotations,
                    prompt,
                    max_tokens,
                    temperature,
                    top_k,
                    top_p,
                    seed,
                    chat,
                    system,
                    context,
                    kv_f16,
                    no_cache,
                    json,
                };
                models::generate(args).await
            }
            Command::Embed { model, texts } => models::embed(model, texts).await,
            Command::Forward { model, ids, lsh_rotations } => models::forward(model, ids, lsh_rotations).await,
            Command::Info { json } => info(json).await,
            Command::Demo { tokens, hidden } => demo(tokens, hidden).await,
            Command::Bench { which: Some(which), .. } => bench(which).await,
            Command::Bench { which: None, suite, json, quick, repeats } => {
                bench_suite(suite.as_deref(), json.as_deref(), quick, repeats).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader has what it wanted: end quietly, as programs in a pipeline do.
        Err(webformer::Error::OutputClosed) => ExitCode::from(EXIT_OUTPUT_CLOSED),
        Err(e) => {
            note(format_args!("error: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to stdout and flushes it. A reader that went away (a closed pipe) becomes
/// `Error::OutputClosed`, which ends the process quietly; `print!` would panic instead.
pub(crate) fn emit(text: &str) -> webformer::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(output_error)
}

/// The error for a failed write to stdout.
pub(crate) fn output_error(e: std::io::Error) -> webformer::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        webformer::Error::OutputClosed
    } else {
        webformer::Error::Usage(format!("cannot write to stdout: {e}"))
    }
}

/// A line on stderr (progress, statistics, errors); a closed stderr is ignored, never a panic.
pub(crate) fn note(line: std::fmt::Arguments) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `println!` through [`emit`]: returns early with the error when stdout is closed.
macro_rules! say {
    ($($t:tt)*) => { crate::emit(&format!("{}\n", format_args!($($t)*)))? };
}
pub(crate) use say;

/// Refuses a count option outside `min..=max` before anything is allocated for it.
fn check_count(what: &str, value: usize, min: usize, max: usize) -> webformer::Result<()> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    let range = if max == usize::MAX { format!("at least {min}") } else { format!("{min} to {max}") };
    Err(webformer::Error::Range { what: what.into(), value: value.to_string(), range })
}

/// Refuses a tensor of `dims` f32 elements that the device could not bind, before the host
/// allocates its values (a product that overflows counts as too large).
fn check_tensor(ctx: &Context, what: &str, dims: &[usize]) -> webformer::Result<()> {
    let max = ctx.limits().max_storage_buffer_binding_size;
    let bytes = dims.iter().try_fold(4u64, |a, &d| a.checked_mul(d as u64));
    match bytes {
        Some(b) if b <= max => Ok(()),
        _ => Err(webformer::Error::Limit {
            what: format!("{what} ({} f32 values)", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" x ")),
            needed: bytes.unwrap_or(u64::MAX),
            max,
            limit: "max_storage_buffer_binding_size, in bytes",
        }),
    }
}

/// A `KxN` shape of `bench gemv --shapes`.
fn parse_shape(s: &str) -> Result<(usize, usize), String> {
    let parse = |t: &str| t.trim().parse::<usize>().ok().filter(|&v| v > 0);
    match s.split_once(['x', 'X']).map(|(k, n)| (parse(k), parse(n))) {
        Some((Some(k), Some(n))) => Ok((k, n)),
        _ => Err(format!("expected KxN with two positive whole numbers (e.g. 576x1536), got {s:?}")),
    }
}

/// Largest text the load benchmark builds on the host.
const MAX_TEXT_BYTES: usize = 1 << 30;
/// Most nodes of the dispatch benchmark's chain (each is a plan step with its own uniform).
const MAX_DISPATCH_NODES: usize = 100_000;
/// Most repeats of any benchmark.
const MAX_REPEATS: usize = 1_000_000;

/// `webformer bench --suite NAME [--json FILE] [--quick]`.
async fn bench_suite(
    suite: Option<&str>,
    json: Option<&std::path::Path>,
    quick: bool,
    repeats: usize,
) -> webformer::Result<()> {
    use webformer::bench::suite::{self, Suite};
    let Some(name) = suite else {
        return Err(webformer::Error::Usage(format!(
            "bench needs --suite ({}) or a benchmark name (see webformer bench --help)",
            Suite::NAMES
        )));
    };
    let which = Suite::parse(name)?;
    check_count("--repeats", repeats, 1, MAX_REPEATS)?;
    let ctx = open().await?;
    // The file is rewritten after each benchmark: a run cut short keeps what it measured.
    let v = suite::run(&ctx, which, quick, repeats, &mut |doc| match json {
        Some(path) => suite::write(doc, path),
        None => Ok(()),
    })
    .await?;
    if let Some(path) = json {
        note(format_args!("wrote {} rows to {}", v["rows"].as_array().map_or(0, |r| r.len()), path.display()));
    }
    emit(&suite::table(&v))
}

async fn bench(which: Bench) -> webformer::Result<()> {
    match which {
        Bench::Load { model, repeats, text_bytes, json } => {
            check_count("--repeats", repeats, 1, MAX_REPEATS)?;
            check_count("--text-bytes", text_bytes, 1, MAX_TEXT_BYTES)?;
            let path = match model {
                Some(p) => p,
                None => webformer::model::ModelPaths::default_cache().map(|p| p.smollm2_gguf).ok_or_else(|| {
                    webformer::Error::Usage("no --model given and neither WEBFORMER_CACHE nor HOME is set".into())
                })?,
            };
            report(webformer::bench::load::run(&path, repeats, text_bytes)?, json)
        }
        other => {
            check_bench_counts(&other)?;
            let ctx = open().await?;
            check_bench_sizes(&ctx, &other)?;
            bench_gpu(&ctx, other).await
        }
    }
}

/// The counts of a GPU benchmark that need no device to check.
fn check_bench_counts(which: &Bench) -> webformer::Result<()> {
    let repeats = match which {
        Bench::Generate { repeats, prompt_tokens, decode_tokens, synthetic, .. } => {
            if let Some(name) = synthetic {
                webformer::model::synthetic::check_name(name)?;
            }
            check_count("--prompt-tokens", *prompt_tokens, 1, u32::MAX as usize)?;
            check_count("--decode-tokens", *decode_tokens, 1, u32::MAX as usize)?;
            repeats
        }
        Bench::Dispatch { nodes, repeats, .. } => {
            check_count("--nodes", *nodes, 1, MAX_DISPATCH_NODES)?;
            repeats
        }
        Bench::Attention { heads, kv_heads, repeats, splits, .. } => {
            check_count("--heads", *heads, 1, 1024)?;
            check_count("--kv-heads", *kv_heads, 1, *heads)?;
            if !heads.is_multiple_of(*kv_heads) {
                return Err(webformer::Error::Range {
                    what: "--kv-heads".into(),
                    value: kv_heads.to_string(),
                    range: format!("a divisor of --heads ({heads})"),
                });
            }
            if let Some(s) = splits {
                check_count("--splits", *s as usize, 1, 64)?;
            }
            repeats
        }
        Bench::Fft { lens, hidden, heads, repeats, attention_repeats, .. } => {
            check_count("--attention-repeats", attention_repeats.unwrap_or(*repeats), 1, MAX_REPEATS)?;
            for &l in lens {
                check_count("--lens", l, 1, 1 << 20)?;
            }
            check_count("--hidden", *hidden, 1, 1 << 16)?;
            check_count("--heads", *heads, 1, 1024)?;
            repeats
        }
        Bench::Reformer { len, ff_chunk, repeats, .. } => {
            check_count("--len", *len, 1, 65536)?;
            check_count("--ff-chunk", *ff_chunk, 0, 65536)?;
            repeats
        }
        Bench::Lsh { lens, heads, head_dim, rounds, chunk, repeats, .. } => {
            check_count("--heads", *heads, 1, 1024)?;
            check_count("--head-dim", *head_dim, 1, webformer::graph::LSH_MAX_HEAD_DIM)?;
            check_count("--rounds", *rounds, 1, webformer::graph::LSH_MAX_ROUNDS)?;
            check_count("--chunk", *chunk, 1, 1 << 16)?;
            for &l in lens {
                check_count("--lens", l, 1, 1 << 20)?;
                if !l.is_multiple_of(*chunk) {
                    return Err(webformer::Error::Range {
                        what: "--lens".into(),
                        value: l.to_string(),
                        range: format!("a multiple of --chunk ({chunk})"),
                    });
                }
            }
            repeats
        }
        Bench::Gemm { repeats, .. } | Bench::Gemv { repeats, .. } | Bench::Ops { repeats, .. } => repeats,
        Bench::Load { repeats, .. } => repeats,
    };
    check_count("--repeats", *repeats, 1, MAX_REPEATS)
}

/// The sizes of a GPU benchmark against the device's binding limit, before allocating.
fn check_bench_sizes(ctx: &Context, which: &Bench) -> webformer::Result<()> {
    match which {
        Bench::Dispatch { elements, .. } => {
            check_count("--elements", *elements, 1, usize::MAX)?;
            check_tensor(ctx, "--elements", &[*elements])
        }
        Bench::Gemm { sizes, .. } => sizes.iter().try_for_each(|&n| {
            check_count("--sizes", n, 1, usize::MAX)?;
            check_tensor(ctx, "a --sizes matrix", &[n, n])
        }),
        Bench::Attention { heads, kv_heads, head_dim, prefill, decode, composite_max, .. } => {
            check_count("--head-dim", *head_dim, 1, 1024)?;
            for &l in prefill {
                check_count("--prefill", l, 1, usize::MAX)?;
                check_tensor(ctx, "a --prefill query", &[l, *heads, *head_dim])?;
                let composite = l.min(*composite_max);
                check_tensor(ctx, "the composite's scores (--composite-max)", &[*heads, composite, composite])?;
            }
            for &l in decode {
                check_count("--decode", l, 1, usize::MAX)?;
                check_tensor(ctx, "a --decode KV cache", &[l, *kv_heads, *head_dim])?;
            }
            Ok(())
        }
        Bench::Gemv { shapes, .. } => {
            shapes.iter().try_for_each(|&(k, n)| check_tensor(ctx, "a --shapes weight", &[n, k]))
        }
        Bench::Lsh { lens, heads, head_dim, rounds, dense_max, .. } => lens.iter().try_for_each(|&l| {
            check_tensor(ctx, "a --lens query", &[*heads, l, *head_dim])?;
            check_tensor(ctx, "the LSH rounds' sorted rows", &[*rounds, *heads, l, *head_dim])?;
            if l <= *dense_max {
                check_tensor(ctx, "a dense --lens query", &[l, *heads, *head_dim])?;
            }
            Ok(())
        }),
        _ => Ok(()),
    }
}

/// The benchmarks that run kernels.
async fn bench_gpu(ctx: &Context, which: Bench) -> webformer::Result<()> {
    match which {
        Bench::Dispatch { nodes, elements, repeats, json } => {
            report(webformer::bench::dispatch::run(ctx, nodes, elements, repeats).await?, json)
        }
        Bench::Attention {
            heads,
            kv_heads,
            head_dim,
            mut prefill,
            large,
            decode,
            composite_max,
            splits,
            kv_f16,
            repeats,
            json,
        } => {
            if large {
                prefill.extend([4096, 16384]);
            }
            let config = webformer::bench::attention::Config {
                heads,
                kv_heads,
                head_dim,
                prefill,
                decode,
                composite_max,
                splits,
                kv_f16,
                repeats,
            };
            let v = webformer::bench::attention::run(ctx, &config).await?;
            table_or_json(&v, json, webformer::bench::attention::table)
        }
        Bench::Fft { lens, hidden, heads, repeats, attention_max, dft_max, attention_repeats, json } => {
            let attention_repeats = attention_repeats.unwrap_or(repeats);
            let c = webformer::bench::fft::Config {
                lens,
                hidden,
                heads,
                repeats,
                attention_max,
                dft_max,
                attention_repeats,
            };
            let v = webformer::bench::fft::run(ctx, &c).await?;
            table_or_json(&v, json, webformer::bench::fft::table)
        }
        Bench::Lsh { lens, heads, head_dim, rounds, chunk, dense_max, repeats, profile, json } => {
            let c = webformer::bench::lsh::Config { lens, heads, head_dim, rounds, chunk, dense_max, repeats, profile };
            let v = webformer::bench::lsh::run(ctx, &c).await?;
            table_or_json(&v, json, webformer::bench::lsh::table)
        }
        Bench::Reformer { synthetic, len, ff_chunk, repeats, json } => {
            let c = webformer::bench::reformer::Config { synthetic, len, ff_chunk, repeats };
            let v = webformer::bench::reformer::run(ctx, &c).await?;
            table_or_json(&v, json, webformer::bench::reformer::table)
        }
        Bench::Gemv { repeats, shapes, only, json } => {
            let v = webformer::bench::gemv::run_filtered(ctx, repeats, &shapes, &only).await?;
            table_or_json(&v, json, webformer::bench::gemv::table)
        }
        Bench::Ops { repeats, json } => report_ops(webformer::bench::ops::run(ctx, repeats).await?, json),
        Bench::Gemm { sizes, repeats, layouts, naive_max, json } => {
            if let Some(bad) = layouts.iter().find(|l| *l != "nn" && *l != "nt") {
                return Err(webformer::Error::Setting {
                    name: "--layouts".into(),
                    value: bad.clone(),
                    expected: "nn, nt".into(),
                });
            }
            let layouts: Vec<&str> = layouts.iter().map(|s| s.as_str()).collect();
            let v = webformer::bench::gemm::run(ctx, &sizes, &layouts, repeats, naive_max).await?;
            table_or_json(&v, json, webformer::bench::gemm::table)
        }
        Bench::Generate { model, synthetic, prompt_tokens, decode_tokens, repeats, profile_prefill, json } => {
            use webformer::bench::generate::{run, Config, Source};
            let config = Config { prompt_tokens, decode_tokens, repeats, profile_prefill };
            let v = match (synthetic, model) {
                (Some(name), _) => run(ctx, &Source::Synthetic(&name), &config).await?,
                (None, Some(path)) => run(ctx, &Source::File(&path), &config).await?,
                (None, None) => {
                    let path = webformer::model::files::default_model(webformer::model::files::DefaultModel::SmolLm2)?;
                    run(ctx, &Source::File(&path), &config).await?
                }
            };
            table_or_json(&v, json, webformer::bench::generate::table)
        }
        Bench::Load { .. } => unreachable!("bench() runs the host-only benchmarks"),
    }
}

/// Prints a bench result as JSON or through its table function.
fn table_or_json(v: &serde_json::Value, json: bool, table: fn(&serde_json::Value) -> String) -> webformer::Result<()> {
    if json {
        say!("{v}");
    } else {
        emit(&table(v))?;
    }
    Ok(())
}

async fn open() -> webformer::Result<Context> {
    let ctx = Context::new().await?;
    note(format_args!("adapter: {}", ctx.adapter().one_line()));
    Ok(ctx)
}

async fn info(json: bool) -> webformer::Result<()> {
    let adapters = gpu::list_adapters(&ContextOptions::from_env()?).await?;
    if json {
        say!("{}", serde_json::to_string_pretty(&adapters).map_err(|e| webformer::Error::Usage(e.to_string()))?);
        return Ok(());
    }
    if adapters.is_empty() {
        return Err(webformer::Error::NoAdapter {
            detail: String::new(),
            hint: "install a Vulkan driver (without a GPU: `apt-get install mesa-vulkan-drivers libvulkan1`)",
        });
    }
    for (i, a) in adapters.iter().enumerate() {
        let l = &a.limits;
        say!("adapter {i}: {}", a.name);
        say!("  backend {}, type {}, driver {} {}", a.backend, a.device_type, a.driver, a.driver_info);
        say!(
            "  features: shader-f16 {}, subgroups {} (size {}..{}), timestamp-query {}",
            yes(a.shader_f16),
            yes(a.subgroups),
            a.subgroup_size[0],
            a.subgroup_size[1],
            yes(a.timestamp_query)
        );
        say!("  max buffer size                  {}", bytes(l.max_buffer_size));
        say!("  max storage binding              {}", bytes(l.max_storage_buffer_binding_size));
        say!("  workgroup storage                {}", bytes(l.max_compute_workgroup_storage_size as u64));
        say!("  invocations per workgroup        {}", l.max_compute_invocations_per_workgroup);
        say!("  storage buffers per stage        {}", l.max_storage_buffers_per_shader_stage);
        say!("  workgroups per dimension         {}", l.max_compute_workgroups_per_dimension);
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB ({b} bytes)", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB ({b} bytes)", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.1} KiB ({b} bytes)", b as f64 / 1024.0),
    }
}

async fn demo(tokens: usize, hidden: usize) -> webformer::Result<()> {
    check_count("--tokens", tokens, 1, usize::MAX)?;
    check_count("--hidden", hidden, 1, usize::MAX / 4)?;
    let ctx = open().await?;
    let ffn = hidden * 4;
    check_tensor(&ctx, "the --tokens x --hidden input", &[tokens, hidden])?;
    check_tensor(&ctx, "the feed-forward weight (4 --hidden x --hidden)", &[ffn, hidden])?;
    // y = x + W2 · gelu(W1 · x + b1) + b2, the feed-forward half of a BERT block.
    let mut g = Graph::new();
    let x = g.input("x", &[tokens, hidden], DType::F32)?;
    let w1 = g.weight("w1", &[ffn, hidden], values(1, ffn * hidden).iter().map(|v| v * 0.1).collect::<Vec<_>>())?;
    let b1 = g.weight("b1", &[ffn], values(2, ffn))?;
    let w2 = g.weight("w2", &[hidden, ffn], values(3, ffn * hidden).iter().map(|v| v * 0.05).collect::<Vec<_>>())?;
    let b2 = g.weight("b2", &[hidden], values(4, hidden))?;
    let h = g.matmul_t(x, w1)?;
    let h = g.add(h, b1)?;
    let h = g.gelu(h)?;
    let h = g.matmul_t(h, w2)?;
    let h = g.add(h, b2)?;
    let y = g.add(h, x)?;
    g.output(y)?;
    emit(&format!("graph:\n{}", g.dump()))?;
    let input = HostData::F32(values(5, tokens * hidden));
    let mut exe = GpuExecutor::new(&ctx, &g)?;
    emit(&format!("plan:\n{}", exe.plan().dump(&g)))?;
    exe.set_input_host("x", &input)?;
    let t0 = Instant::now();
    exe.run()?;
    let out = exe.read(y).await?.to_f32();
    let wall = t0.elapsed();
    let mut cpu = CpuExecutor::new(&g);
    cpu.set_input("x", &input)?;
    cpu.run()?;
    let reference = cpu.value(y)?.to_f32();
    let max_err = demo_error(&out, &reference)?;
    say!("output [{tokens}, {hidden}]: first values {:?}", &out[..4.min(out.len())]);
    say!(
        "max relative error vs CPU reference: {max_err:.2e} (first run incl. upload and readback: {:.1} ms)",
        wall.as_secs_f64() * 1e3
    );
    if ctx.has(wgpu::Features::TIMESTAMP_QUERY) {
        emit(&format!("per-node GPU time:\n{}", exe.run_profiled().await?.table()))?;
    }
    say!("demo OK");
    Ok(())
}

/// Relative error the demo allows between GPU and CPU (two matmuls of k <= 4·hidden in f32).
const DEMO_RTOL: f32 = 1e-4;

/// The largest error |gpu - cpu| / max(|cpu|, 1), checked element by element so that a NaN
/// (or a length mismatch) fails instead of being skipped as a `max` fold would.
fn demo_error(gpu: &[f32], cpu: &[f32]) -> webformer::Result<f32> {
    if gpu.len() != cpu.len() {
        return Err(webformer::Error::Usage(format!(
            "GPU and CPU disagree: {} values vs {} from the reference",
            gpu.len(),
            cpu.len()
        )));
    }
    let mut worst = 0f32;
    for (i, (a, b)) in gpu.iter().zip(cpu).enumerate() {
        let e = (a - b).abs() / b.abs().max(1.0);
        if e.is_nan() || e > DEMO_RTOL {
            return Err(webformer::Error::Usage(format!(
                "GPU and CPU disagree at element {i}: {a} vs {b} (relative error {e:.2e} > {DEMO_RTOL:.0e})"
            )));
        }
        worst = worst.max(e);
    }
    Ok(worst)
}

/// Prints the ops bench: JSON as is, or a table of its rows.
fn report_ops(v: serde_json::Value, json: bool) -> webformer::Result<()> {
    if json {
        say!("{v}");
        return Ok(());
    }
    say!("{:<40} {:<16} {:>12} {:>10}", "op", "shape", "time (us)", "GB/s");
    let rows = v["rows"].as_array().cloned().unwrap_or_default();
    for r in rows.iter().chain(std::iter::once(&v["baseline"])) {
        let shape = r.get("shape").map(|s| s.to_string()).unwrap_or_else(|| "[49152]".into());
        say!(
            "{:<40} {:<16} {:>12.1} {:>10.2}",
            r["op"].as_str().unwrap_or("?"),
            shape,
            r["us"].as_f64().unwrap_or(f64::NAN),
            r["gb_per_s"].as_f64().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

/// Prints a bench report: JSON as is, or its fields one per line.
fn report(v: serde_json::Value, json: bool) -> webformer::Result<()> {
    if json {
        say!("{v}");
        return Ok(());
    }
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            say!("  {k:<24} {val}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::demo_error;

    #[test]
    fn demo_check_fails_on_nan_and_on_lengths() {
        assert!(demo_error(&[1.0, 2.0], &[1.0, 2.0]).unwrap() == 0.0);
        assert!(demo_error(&[1.0, 2.00001], &[1.0, 2.0]).is_ok());
        let e = demo_error(&[1.0, f32::NAN, 3.0], &[1.0, 2.0, 3.0]).unwrap_err().to_string();
        assert!(e.contains("element 1") && e.contains("NaN"), "{e}");
        assert!(demo_error(&[1.0, 2.0], &[1.0, f32::NAN]).is_err(), "a NaN reference fails too");
        assert!(demo_error(&[1.0, 2.1], &[1.0, 2.0]).is_err());
        assert!(demo_error(&[1.0], &[1.0, 2.0]).unwrap_err().to_string().contains("1 values vs 2"));
    }
}
