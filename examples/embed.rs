//! Sentence similarity with a sentence-transformers model (all-MiniLM-L6-v2 by default,
//! fetched into webformer's cache on first use): one normalised embedding per sentence, and
//! the matrix of their cosine similarities.
//!
//! ```text
//! cargo run --release --example embed -- "A man is eating food." "Someone eats." "The sky is blue."
//! cargo run --release --example embed -- --model DIR "first sentence" "second sentence"
//! ```

use std::path::PathBuf;

use clap::Parser;
use webformer::model::files::{default_model, load_embedder, DefaultModel};
use webformer::Context;

#[derive(Parser)]
struct Args {
    /// A sentence-transformers folder (config.json, model.safetensors, tokenizer.json, ...);
    /// default: all-MiniLM-L6-v2 from the cache.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The sentences to compare.
    #[arg(default_values_t = ["A man is eating food.".to_string(), "Someone eats.".to_string(), "The sky is blue.".to_string()])]
    sentences: Vec<String>,
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
    let dir = match a.model {
        Some(p) => p,
        None => default_model(DefaultModel::MiniLm)?,
    };
    let ctx = Context::new().await?;
    let mut embedder = load_embedder(&ctx, &dir)?;
    let mut vecs = Vec::new();
    for s in &a.sentences {
        vecs.push(embedder.embed(s).await?);
    }
    println!("{} dimensions; cosine similarity:", vecs[0].len());
    for (i, s) in a.sentences.iter().enumerate() {
        // The embeddings are unit vectors, so the dot product is the cosine.
        let row: Vec<String> =
            vecs.iter().map(|v| format!("{:6.3}", v.iter().zip(&vecs[i]).map(|(a, b)| a * b).sum::<f32>())).collect();
        println!("{} | {s}", row.join(" "));
    }
    Ok(())
}
