//! Streams a continuation of a prompt from a GGUF language model (SmolLM2-135M-Instruct by
//! default, fetched into webformer's cache on first use), token by token, on the GPU.
//!
//! ```text
//! cargo run --release --example generate -- --prompt "The capital of France is"
//! cargo run --release --example generate -- --model model.gguf --prompt "Hello" --max-tokens 32 --temperature 0.7
//! ```

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use webformer::model::files::{default_model, load_llama, DefaultModel};
use webformer::model::{GenerateOptions, Generator, Sampling, TextStream};
use webformer::Context;

#[derive(Parser)]
struct Args {
    /// A GGUF file (Llama-family decoder); default: SmolLM2-135M-Instruct from the cache.
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value = "The capital of France is")]
    prompt: String,
    #[arg(long, default_value_t = 24)]
    max_tokens: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() {
    // Mesa's Vulkan drivers complain on stderr without XDG_RUNTIME_DIR; this points it at a
    // private folder first (a no-op where it is set), as the webformer CLI does.
    webformer::gpu::ensure_runtime_dir();
    if let Err(e) = pollster::block_on(run(Args::parse())) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(a: Args) -> webformer::Result<()> {
    let path = match a.model {
        Some(p) => p,
        None => default_model(DefaultModel::SmolLm2)?,
    };
    let loaded = load_llama(&path, &mut |_, _, _| {})?;
    let ctx = Context::new().await?;
    eprintln!("{} on {}", path.display(), ctx.adapter().one_line());
    let ids = loaded.tokenizer.encode(&a.prompt, true)?;
    let mut gen = Generator::new(&ctx, loaded.model, ids.len() + a.max_tokens, Sampling::default())?;
    let options =
        GenerateOptions { max_tokens: a.max_tokens, temperature: a.temperature, seed: a.seed, stop_at_eos: true };

    // Pieces of text as they are decoded (a token can end mid-character; the stream waits).
    let mut stream = TextStream::new(&loaded.tokenizer);
    let mut out = std::io::stdout();
    print!("{}", a.prompt);
    let result = gen
        .generate(&ids, &options, |id| {
            let piece = stream.push(id).unwrap_or_default();
            // Stop generating once nobody reads (a closed pipe).
            write!(out, "{piece}").and_then(|_| out.flush()).is_ok()
        })
        .await?;
    println!();
    let s = result.stats;
    eprintln!(
        "{} prompt tokens at {:.1} tokens/s; {} new tokens at {:.1} tokens/s",
        s.prompt_tokens,
        s.prefill_tokens_per_s(),
        s.generated_tokens,
        s.decode_tokens_per_s()
    );
    Ok(())
}
