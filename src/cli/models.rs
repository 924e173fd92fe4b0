//! The model commands of the `webformer` binary: generate, embed, forward. Loading shows a
//! progress bar on a terminal; results go to stdout, everything else to stderr.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use webformer::model::files::{self, DefaultModel, ModelKind};
use webformer::model::{ChatTemplate, GenerateOptions, Generator, Message, Sampling, TextStream};
use webformer::{Error, Result};

use crate::{emit, note, output_error, say};

/// Settings of `webformer generate`.
pub struct GenerateArgs {
    pub model: Option<PathBuf>,
    /// Reformer: the prompt as ids.
    pub ids: Vec<u32>,
    /// Reformer: LSH rotations file.
    pub lsh_rotations: Option<PathBuf>,
    pub prompt: Option<String>,
    pub max_tokens: usize,
    pub temperature: f32,
    pub top_k: u32,
    pub top_p: f32,
    pub seed: u64,
    pub chat: bool,
    pub system: Option<String>,
    pub context: usize,
    pub kv_f16: bool,
    /// Reformer: uncached decoding (a full forward per step).
    pub no_cache: bool,
    pub json: bool,
}

fn model_path(given: Option<PathBuf>, default: DefaultModel) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p),
        None => files::default_model(default),
    }
}

/// A byte/tensor progress bar on stderr (hidden when stderr is not a terminal).
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>8} [{bar:32}] {percent:>3}% {elapsed}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn load_llama(path: &Path) -> Result<files::LoadedLlama> {
    let bar = progress_bar();
    let mut stage = String::new();
    let loaded = files::load_llama(path, &mut |s, done, total| {
        if s != stage {
            stage = s.to_string();
            bar.set_message(stage.clone());
            bar.set_length(total);
        }
        bar.set_position(done);
    });
    bar.finish_and_clear();
    loaded
}

pub(crate) fn read_prompt(given: Option<String>) -> Result<String> {
    if let Some(p) = given {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        note(format_args!("reading the prompt from stdin (end it with Ctrl-D)"));
    }
    let mut s = String::new();
    stdin.lock().read_to_string(&mut s).map_err(|e| Error::Usage(format!("cannot read the prompt from stdin: {e}")))?;
    Ok(s)
}

/// Checks the options of `webformer generate` before anything is loaded, with the library's
/// own checks (the same ranges as `Generator` and `GenerateOptions`).
fn check_generate_args(a: &GenerateArgs) -> Result<()> {
    Sampling { top_k: a.top_k, top_p: a.top_p }.check()?;
    GenerateOptions { max_tokens: a.max_tokens, temperature: a.temperature, seed: a.seed, stop_at_eos: true }
        .check()?;
    if a.max_tokens == 0 {
        return Err(Error::Range { what: "--max-tokens".into(), value: "0".into(), range: "at least 1".into() });
    }
    if a.context == 0 {
        return Err(Error::Range {
            what: "--context".into(),
            value: "0".into(),
            range: "at least 1 (positions of the KV cache)".into(),
        });
    }
    Ok(())
}

/// `webformer generate`.
pub async fn generate(a: GenerateArgs) -> Result<()> {
    check_generate_args(&a)?;
    let path = model_path(a.model.clone(), DefaultModel::SmolLm2)?;
    let kind = files::detect(&path)?;
    if kind == ModelKind::ReformerFolder {
        return super::reformer::generate(&path, a).await;
    }
    if !a.ids.is_empty() || a.lsh_rotations.is_some() || a.no_cache {
        return Err(Error::Usage("--ids, --lsh-rotations and --no-cache apply to Reformer models only".into()));
    }
    if kind != ModelKind::LlamaGguf {
        return Err(Error::Usage(format!(
            "{} is an encoder (BERT or FNet); generate needs a decoder GGUF or a Reformer LM folder (use embed or forward)",
            path.display()
        )));
    }
    let text = read_prompt(a.prompt)?;
    if text.trim().is_empty() {
        return Err(Error::Usage("the prompt is empty: pass --prompt TEXT or text on stdin".into()));
    }
    let t0 = Instant::now();
    let files::LoadedLlama { model, tokenizer } = load_llama(&path)?;
    let t_read = t0.elapsed().as_secs_f64();
    let prompt = if a.chat {
        let template =
            ChatTemplate::from_jinja(model.config.chat_template.as_deref().unwrap_or(""), &path.display().to_string())?;
        let mut messages = Vec::new();
        messages.extend(a.system.as_deref().map(Message::system));
        messages.push(Message::user(&text));
        template.render(&messages, true)
    } else {
        text
    };
    let ids = tokenizer.encode(&prompt, true)?;
    let context = a.context.min(model.config.context_length);
    if context < a.context {
        note(format_args!("note: --context {} capped to the model's context length of {context}", a.context));
    }
    if ids.len() >= context {
        return Err(Error::Usage(format!(
            "the prompt is {} tokens, longer than the context of {context} (raise --context, up to the model's {})",
            ids.len(),
            model.config.context_length
        )));
    }
    let max_tokens = a.max_tokens.min(context - ids.len());
    if max_tokens < a.max_tokens {
        note(format_args!("note: generating at most {max_tokens} tokens, the room left in the context of {context}"));
    }
    let ctx = super::open().await?;
    let kv = if a.kv_f16 { webformer::DType::F16 } else { webformer::DType::F32 };
    let mut gen = Generator::with_kv_dtype(&ctx, model, context, Sampling { top_k: a.top_k, top_p: a.top_p }, kv)?;
    gen.sync().await?;
    note(format_args!(
        "loaded {} in {:.2} s (read and parse {:.2} s; {:.0} MiB on the GPU incl. a {context}-position KV cache)",
        path.display(),
        t0.elapsed().as_secs_f64(),
        t_read,
        gen.gpu_bytes() as f64 / (1 << 20) as f64
    ));
    let options = GenerateOptions { max_tokens, temperature: a.temperature, seed: a.seed, stop_at_eos: true };
    let mut stream = TextStream::new(&tokenizer);
    let mut stdout = std::io::stdout();
    let mut failure = None;
    // Generation stops at the first failed write: once the reader is gone (`| head`), nobody
    // reads the tokens still to come.
    let out = gen
        .generate(&ids, &options, |id| {
            if a.json {
                return true;
            }
            let written = stream
                .push(id)
                .and_then(|piece| write!(stdout, "{piece}").and_then(|_| stdout.flush()).map_err(output_error));
            match written {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })
        .await?;
    if let Some(e) = failure {
        return Err(e);
    }
    let text = tokenizer.decode(&out.ids, true)?;
    if a.json {
        say!("{}", serde_json::json!({ "prompt_ids": ids, "ids": out.ids, "text": text }));
    } else {
        emit("\n")?;
    }
    let s = out.stats;
    note(format_args!(
        "prompt: {} tokens in {:.3} s ({:.1} tokens/s, plan {:.3} s); generated {} tokens in {:.3} s ({:.1} tokens/s){}",
        s.prompt_tokens,
        s.prefill_s,
        s.prefill_tokens_per_s(),
        s.prompt_setup_s,
        s.generated_tokens,
        s.decode_s,
        s.decode_tokens_per_s(),
        if out.stopped_at_eos { "; stopped at end of sequence" } else { "" }
    ));
    Ok(())
}

/// `webformer embed`: one normalised embedding per text, as a JSON array.
pub async fn embed(model: Option<PathBuf>, texts: Vec<String>) -> Result<()> {
    if texts.is_empty() {
        return Err(Error::Usage("give at least one TEXT to embed".into()));
    }
    let path = model_path(model, DefaultModel::MiniLm)?;
    let kind = files::detect(&path)?;
    let mut all = Vec::new();
    match kind {
        ModelKind::BertFolder => {
            let mut embedder = files::load_embedder(&super::open().await?, &path)?;
            for t in &texts {
                all.push(embedder.embed(t).await?);
            }
        }
        ModelKind::FNetFolder => {
            let mut embedder = files::load_fnet_embedder(&super::open().await?, &path)?;
            for t in &texts {
                all.push(embedder.embed(t).await?);
            }
        }
        _ => {
            return Err(Error::Usage(format!(
                "{} is not an encoder folder (BERT or FNet with a tokenizer.json), which embed needs",
                path.display()
            )))
        }
    }
    say!("{}", serde_json::to_string(&all).map_err(|e| Error::Usage(e.to_string()))?);
    Ok(())
}

/// `webformer forward`: the final output for token ids, as JSON {"shape", "data"}.
pub async fn forward(model: Option<PathBuf>, ids: Vec<u32>, lsh_rotations: Option<PathBuf>) -> Result<()> {
    if ids.is_empty() {
        return Err(Error::Usage("--ids is empty: give token ids, e.g. --ids 1,2,3".into()));
    }
    let path = model_path(model, DefaultModel::SmolLm2)?;
    let kind = files::detect(&path)?;
    if lsh_rotations.is_some() && kind != ModelKind::ReformerFolder {
        return Err(Error::Usage("--lsh-rotations applies to Reformer models only".into()));
    }
    let (shape, data) = match kind {
        ModelKind::LlamaGguf => {
            let files::LoadedLlama { model, .. } = load_llama(&path)?;
            let vocab = model.config.vocab;
            let max = model.config.context_length;
            if ids.len() > max {
                return Err(Error::Usage(format!("{} ids are longer than the model's context of {max}", ids.len())));
            }
            let mut gen = Generator::new(&super::open().await?, model, ids.len(), Sampling::default())?;
            (vec![ids.len(), vocab], gen.logits(&ids).await?)
        }
        ModelKind::ReformerFolder => {
            let (model, rotations) = files::load_reformer(&path, lsh_rotations.as_deref())?;
            model.run(&super::open().await?, &ids, &rotations).await?
        }
        ModelKind::BertFolder => {
            let mut embedder = files::load_embedder(&super::open().await?, &path)?;
            let hidden = embedder.bert().config.hidden_size;
            (vec![ids.len(), hidden], embedder.encode_ids(&ids).await?.hidden)
        }
        ModelKind::FNetFolder => {
            // The masked-LM logits when the folder has the head, else the last hidden state.
            let fnet = files::load_fnet(&path)?;
            let out = fnet.forward(&super::open().await?, &ids, &vec![0; ids.len()]).await?;
            match out.logits {
                Some(logits) => (vec![ids.len(), fnet.config.vocab_size], logits),
                None => (vec![ids.len(), fnet.config.hidden_size], out.hidden),
            }
        }
    };
    say!("{}", serde_json::json!({ "shape": shape, "data": data }));
    Ok(())
}
