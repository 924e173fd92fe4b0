//! The options objects of the JS API, parsed from the JSON the package's `webformer.js` passes
//! down (the page's object through `JSON.stringify`). Unknown keys are refused, so a misspelt
//! option is an error naming it instead of a silent default.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::{GenerateOptions, Sampling};

/// `engine.load({ ..., context, topK, topP, name })`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadOptions {
    /// Positions of the KV cache (decoders); default min(2048, the model's context length).
    pub context: Option<usize>,
    /// Sampling filters, fixed in the decode graph when the model is loaded.
    pub top_k: Option<u32>,
    pub top_p: Option<f32>,
    /// The file name used in error messages.
    pub name: Option<String>,
}

/// `model.generate(prompt, { ... })`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateOpts {
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    #[serde(default)]
    pub temperature: f32,
    #[serde(default)]
    pub seed: u64,
    /// Wrap the prompt in the model's chat template as a user message.
    #[serde(default)]
    pub chat: bool,
    /// System message for `chat` (default: the template's own).
    pub system: Option<String>,
    #[serde(default = "yes")]
    pub stop_at_eos: bool,
    /// Accepted only when equal to the values the model was loaded with.
    pub top_k: Option<u32>,
    pub top_p: Option<f32>,
}

fn default_max_tokens() -> usize {
    64
}

fn yes() -> bool {
    true
}

/// Parses an options object, with an error that says which call's options are wrong.
pub fn parse<T: for<'de> Deserialize<'de>>(json: &str, call: &str) -> Result<T> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| Error::Usage(format!("bad options for {call}: {e}")))
}

impl GenerateOpts {
    /// The library's options, after the same range checks as the native CLI.
    pub fn to_options(&self, loaded: Sampling) -> Result<GenerateOptions> {
        if self.max_tokens == 0 {
            return Err(Error::Range { what: "maxTokens".into(), value: "0".into(), range: "at least 1".into() });
        }
        let fixed = |what: &str, asked: String, loaded: String| {
            Error::Usage(format!(
                "{what} is fixed when the model is loaded (engine.load({{ ..., {what} }})); this model was loaded with {what} {loaded}, not {asked}"
            ))
        };
        if let Some(k) = self.top_k.filter(|&k| k != loaded.top_k) {
            return Err(fixed("topK", k.to_string(), loaded.top_k.to_string()));
        }
        if let Some(p) = self.top_p.filter(|&p| p != loaded.top_p) {
            return Err(fixed("topP", p.to_string(), loaded.top_p.to_string()));
        }
        let o = GenerateOptions {
            max_tokens: self.max_tokens,
            temperature: self.temperature,
            seed: self.seed,
            stop_at_eos: self.stop_at_eos,
        };
        o.check()?;
        Ok(o)
    }
}

impl LoadOptions {
    /// The sampling filters, checked.
    pub fn sampling(&self) -> Result<Sampling> {
        let s = Sampling { top_k: self.top_k.unwrap_or(0), top_p: self.top_p.unwrap_or(1.0) };
        s.check()?;
        Ok(s)
    }
}
