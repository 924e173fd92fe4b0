//! Text to token ids and back, through Hugging Face's `tokenizers` crate so BPE merges, byte
//! mapping and WordPiece behave exactly as transformers' do.
//!
//! Two sources:
//! - GGUF metadata ([`Tokenizer::from_gguf`]): GPT-2-style byte-level BPE built from
//!   `tokenizer.ggml.tokens`, `.merges`, `.token_type`, the bos/eos ids and `.add_bos_token`,
//!   with the pre-tokenizer `tokenizer.ggml.pre` names (llama.cpp's list of pre-tokenizer types).
//! - `tokenizer.json` ([`Tokenizer::from_json`]): any Hugging Face fast tokenizer, e.g. BERT's
//!   WordPiece for all-MiniLM-L6-v2. Padding and truncation stored in the file are switched off:
//!   ids come out as `AutoTokenizer(text)` gives them; [`Tokenizer::truncate`] opts back in.
//!
//! ```
//! # fn demo(gguf: &webformer::model::Gguf) -> webformer::Result<()> {
//! let tok = webformer::model::Tokenizer::from_gguf(gguf)?;
//! let ids = tok.encode("Hello world", true)?;
//! assert_eq!(tok.decode(&ids, true)?, "Hello world");
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, TruncationParams};

use super::gguf::Gguf;
use crate::error::{Error, Result};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const TOKEN_CONTROL: i64 = 3;
const TOKEN_USER_DEFINED: i64 = 4;

/// A tokenizer with the model's special ids.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    source: String,
    bos_id: Option<u32>,
    eos_id: Option<u32>,
}

/// How the text is split before BPE, by `tokenizer.ggml.pre`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PreSplit {
    /// GPT-2's regex (`'s|'t|...| ?\p{L}+| ?\p{N}+|...`), as HF's `ByteLevel` pre-tokenizer.
    Gpt2,
    /// Every number character on its own (`\p{N}`), then GPT-2's regex: StarCoder's and
    /// SmolLM's tokenizers (HF: `Digits(individual_digits=True)` then `ByteLevel`).
    DigitsThenGpt2,
}

impl PreSplit {
    /// The llama.cpp pre-tokenizer names (llama-vocab.cpp) whose split is one of ours.
    fn from_gguf(name: &str) -> Option<Self> {
        match name {
            "default" | "gpt2" | "gpt-2" | "mpt" | "olmo" | "jais" | "trillion" => Some(PreSplit::Gpt2),
            "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b" => {
                Some(PreSplit::DigitsThenGpt2)
            }
            _ => None,
        }
    }
}

/// GPT-2's reversible byte-to-character map (`bytes_to_unicode`): printable bytes stand for
/// themselves, the rest are shifted to U+0100 and up, so every byte is one visible character.
fn byte_chars() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        map[b as usize] = if printable {
            b as char
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('\u{FFFD}')
        };
    }
    map
}

impl Tokenizer {
    /// Builds the byte-level BPE tokenizer a GGUF file describes (`tokenizer.ggml.model` =
    /// `gpt2`). Control tokens (type 3, e.g. `<|im_start|>`) become special added tokens and
    /// user-defined ones (type 4) plain added tokens, so both are matched whole in text, as
    /// llama.cpp and transformers do. A BOS is prepended when `tokenizer.ggml.add_bos_token`
    /// says so (false for SmolLM2); EOS likewise with `add_eos_token`.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let err = |detail: String| Error::Model { file: g.file().to_string(), detail };
        let model = g.str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(err(format!("tokenizer.ggml.model is '{model}'; webformer builds GGUF tokenizers of type 'gpt2' (byte-level BPE) only")));
        }
        let pre_name = g.str_opt("tokenizer.ggml.pre")?.unwrap_or("default");
        let pre = PreSplit::from_gguf(pre_name).ok_or_else(|| {
            err(format!(
                "tokenizer.ggml.pre is '{pre_name}', a pre-tokenizer webformer does not implement (it knows gpt2, default, mpt, olmo, jais, trillion, starcoder, refact, command-r, smollm, codeshell, exaone, minerva-7b)"
            ))
        })?;
        let tokens = g.strings("tokenizer.ggml.tokens")?;
        let merges = g.strings("tokenizer.ggml.merges")?;
        let types = match g.get("tokenizer.ggml.token_type") {
            Some(_) => g.ints("tokenizer.ggml.token_type")?,
            None => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(err(format!(
                "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
                types.len(),
                tokens.len()
            )));
        }

        // Tokens are spelled in GPT-2's byte alphabet; one that is not (a mislabelled or
        // hand-added token) is re-spelled from its UTF-8 bytes, as transformers' converter does.
        let chars = byte_chars();
        let alphabet: std::collections::HashSet<char> = chars.iter().copied().collect();
        let in_alphabet = |t: &str| t.chars().all(|c| alphabet.contains(&c));
        let spell = |t: &str| -> String {
            if in_alphabet(t) {
                t.to_string()
            } else {
                t.bytes().map(|b| chars[b as usize]).collect()
            }
        };
        let vocab: Vocab = tokens.iter().enumerate().map(|(i, t)| (spell(t), i as u32)).collect();
        let mut merge_pairs = Vec::with_capacity(merges.len());
        for (i, m) in merges.iter().enumerate() {
            // Byte-level tokens never contain a space (it is spelled 'Ġ'), so one space splits a merge.
            let Some((a, b)) = m.split_once(' ') else {
                return Err(err(format!(
                    "tokenizer.ggml.merges entry {i} ({m:?}) is not two tokens separated by a space"
                )));
            };
            merge_pairs.push((a.to_string(), b.to_string()));
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merge_pairs)
            .build()
            .map_err(|e| err(format!("the BPE vocabulary and merges do not fit together: {e}")))?;

        let mut inner = tokenizers::Tokenizer::new(bpe);
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tok: PreTokenizerWrapper = match pre {
            PreSplit::Gpt2 => byte_level.into(),
            PreSplit::DigitsThenGpt2 => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
        };
        inner.with_pre_tokenizer(Some(pre_tok));
        inner.with_decoder(Some(ByteLevel::default()));

        let control: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(t, &ty)| ty == TOKEN_CONTROL && in_alphabet(t))
            .map(|(t, _)| AddedToken::from(t.to_string(), true).normalized(false))
            .collect();
        inner.add_special_tokens(&control);
        let user: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter(|(_, &ty)| ty == TOKEN_USER_DEFINED)
            .map(|(t, _)| AddedToken::from(spell(t), false).normalized(false))
            .collect();
        inner.add_tokens(&user);

        let bos_id = g.u32_opt("tokenizer.ggml.bos_token_id")?;
        let eos_id = g.u32_opt("tokenizer.ggml.eos_token_id")?;
        let add_bos = g.bool_opt("tokenizer.ggml.add_bos_token")?.unwrap_or(false);
        let add_eos = g.bool_opt("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        if add_bos || add_eos {
            let special = |id: Option<u32>, what: &str| -> Result<(String, u32)> {
                let id = id.ok_or_else(|| {
                    err(format!(
                        "tokenizer.ggml.add_{what}_token is true but tokenizer.ggml.{what}_token_id is missing"
                    ))
                })?;
                let tok = tokens.get(id as usize).ok_or_else(|| {
                    err(format!("tokenizer.ggml.{what}_token_id {id} is outside the vocabulary of {}", tokens.len()))
                })?;
                Ok((spell(tok), id))
            };
            let mut template = Vec::new();
            let mut specials = Vec::new();
            if add_bos {
                let (t, id) = special(bos_id, "bos")?;
                template.push(t.clone());
                specials.push((t, id));
            }
            template.push("$A".to_string());
            if add_eos {
                let (t, id) = special(eos_id, "eos")?;
                template.push(t.clone());
                specials.push((t, id));
            }
            let post = TemplateProcessing::builder()
                .try_single(template.join(" "))
                .map_err(|e| err(format!("cannot build the bos/eos template: {e}")))?
                .special_tokens(specials)
                .build()
                .map_err(|e| err(format!("cannot build the bos/eos template: {e}")))?;
            inner.with_post_processor(Some(post));
        }
        Ok(Self { inner, source: g.file().to_string(), bos_id, eos_id })
    }

    /// Loads a Hugging Face `tokenizer.json` (`file` names it in errors), with the file's
    /// padding and truncation switched off. BOS/EOS ids are looked up as `[CLS]`/`[SEP]`
    /// (BERT) or `<s>`/`</s>` where present.
    pub fn from_json(bytes: &[u8], file: &str) -> Result<Self> {
        let bad = |e: serde_json::Error| Error::Model {
            file: file.into(),
            detail: format!("not a readable tokenizer.json: {e}"),
        };
        // Parsed in two steps on purpose: tokenizers 0.22 deserialises its "decoder" section
        // through an `expect`, so malformed JSON there panics inside `from_bytes`. Syntax
        // errors are caught here first; from a parsed value that step cannot fail.
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(bad)?;
        let mut inner: tokenizers::Tokenizer = serde_json::from_value(value).map_err(bad)?;
        // The templates are checked in the form tokenizers itself writes, not as the file
        // spells them: serde also reads a piece as an array (`{"SpecialToken": ["[X]", 0]}`)
        // and a processor without its "type" tag, and both reach the same panic.
        if let Some(pp) = inner.get_post_processor() {
            let canonical = serde_json::to_value(pp).map_err(bad)?;
            check_templates(&canonical, "post_processor", file)?;
        }
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Model { file: file.into(), detail: format!("cannot switch truncation off: {e}") })?;
        let first = |names: &[&str]| names.iter().find_map(|n| inner.token_to_id(n));
        let bos_id = first(&["[CLS]", "<s>", "<|endoftext|>"]);
        let eos_id = first(&["[SEP]", "</s>", "<|endoftext|>"]);
        Ok(Self { inner, source: file.into(), bos_id, eos_id })
    }

    /// Truncates encodings to `max_len` ids, special tokens included (BERT keeps its [CLS] and
    /// [SEP]), as sentence-transformers does with its `max_seq_length`.
    pub fn truncate(&mut self, max_len: usize) -> Result<()> {
        let params = TruncationParams { max_length: max_len, ..Default::default() };
        self.inner.with_truncation(Some(params)).map_err(|e| Error::Model {
            file: self.source.clone(),
            detail: format!("cannot truncate to {max_len} tokens: {e}"),
        })?;
        Ok(())
    }

    /// Token ids of `text`. `add_special` adds what the model adds around a sequence
    /// ([CLS] ... [SEP] for BERT; BOS when the GGUF asks for it). Special tokens written in
    /// the text (`<|im_start|>`) are always recognised, as in transformers.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, add_special).map_err(|e| Error::Model {
            file: self.source.clone(),
            detail: format!("cannot encode {:?}: {e}", preview(text)),
        })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`; `skip_special` leaves out special tokens (`<|im_end|>`, [CLS]).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let vocab = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(Error::Model {
                file: self.source.clone(),
                detail: format!("cannot decode token id {bad}: the vocabulary has {vocab} tokens"),
            });
        }
        self.inner.decode(ids, skip_special).map_err(|e| Error::Model {
            file: self.source.clone(),
            detail: format!("cannot decode {} ids: {e}", ids.len()),
        })
    }

    /// Id of a token spelled as in the vocabulary (`<|im_end|>`, `Ġhello`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The vocabulary spelling of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The largest id the tokenizer can produce (added tokens included), or None when empty.
    pub fn max_id(&self) -> Option<u32> {
        self.inner.get_vocab(true).into_values().max()
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos_id
    }

    /// The special (control) tokens and their ids.
    pub fn special_tokens(&self) -> HashMap<String, u32> {
        self.inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (t.content, id))
            .collect()
    }

    /// The underlying Hugging Face tokenizer (offsets, streaming decode, batch encode).
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("source", &self.source)
            .field("vocab", &self.vocab_size())
            .field("bos", &self.bos_id)
            .field("eos", &self.eos_id)
            .finish()
    }
}

/// Refuses a `TemplateProcessing` post-processor that tokenizers 0.22 would panic on at the
/// first encode: it indexes its special tokens by the template's ids without checking them
/// (its builder checks; deserialising does not), and takes the second sequence of a `single`
/// template without one. `Sequence` processors are checked member by member; `at` is the
/// JSON path, for the message.
fn check_templates(pp: &serde_json::Value, at: &str, file: &str) -> Result<()> {
    use serde_json::Value;
    let refuse = |detail: String| Err(Error::Model { file: file.into(), detail });
    match pp.get("type").and_then(Value::as_str) {
        Some("TemplateProcessing") => {
            let known = pp.get("special_tokens").and_then(Value::as_object);
            for key in ["single", "pair"] {
                for piece in pp.get(key).and_then(Value::as_array).into_iter().flatten() {
                    let special = piece.get("SpecialToken").and_then(|t| t.get("id")).and_then(Value::as_str);
                    if let Some(id) = special.filter(|id| !known.is_some_and(|k| k.contains_key(*id))) {
                        return refuse(format!(
                            "{at}.{key} uses the special token {id:?}, which {at}.special_tokens does not define"
                        ));
                    }
                    let sequence = piece.get("Sequence").and_then(|t| t.get("id")).and_then(Value::as_str);
                    if key == "single" && sequence == Some("B") {
                        return refuse(format!("{at}.single uses sequence B, which a single sequence does not have"));
                    }
                }
            }
            Ok(())
        }
        Some("Sequence") => {
            let members = pp.get("processors").and_then(Value::as_array).into_iter().flatten();
            members.enumerate().try_for_each(|(i, p)| check_templates(p, &format!("{at}.processors[{i}]"), file))
        }
        _ => Ok(()),
    }
}

fn preview(text: &str) -> String {
    let p: String = text.chars().take(40).collect();
    if p.len() < text.len() {
        format!("{p}...")
    } else {
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_chars_is_gpt2s_map() {
        let m = byte_chars();
        assert_eq!(m[b' ' as usize], 'Ġ');
        assert_eq!(m[b'\n' as usize], 'Ċ');
        assert_eq!(m[b'a' as usize], 'a');
        // 0xAD (soft hyphen) is the 68th non-printable byte: U+0100 + 67.
        assert_eq!(m[0xAD], '\u{143}');
        let set: std::collections::HashSet<char> = m.iter().copied().collect();
        assert_eq!(set.len(), 256, "the map is a bijection");
    }
}
