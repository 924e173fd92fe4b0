//! Chat prompts in the ChatML form SmolLM2's template (`tokenizer.chat_template`) produces:
//!
//! ```text
//! <|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n
//! ```
//!
//! The template is Jinja; rather than embed a Jinja engine, this recognises ChatML templates and
//! renders them directly. What varies between ChatML templates is whether a default system
//! message is inserted when the conversation does not start with one (SmolLM2: "You are a
//! helpful AI assistant named SmolLM, trained by Hugging Face"); that text is read from the
//! template. A template that is not ChatML is refused rather than rendered wrongly. Checked
//! against transformers' `apply_chat_template` by `tests/model_load.rs`.
//!
//! ```
//! use webformer::model::{ChatTemplate, Message};
//! let t = ChatTemplate::chatml(None);
//! let p = t.render(&[Message::user("Hi")], true);
//! assert_eq!(p, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const START: &str = "<|im_start|>";
const END: &str = "<|im_end|>";

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant` (ChatML takes any role name).
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Self { role: role.into(), content: content.into() }
    }
    pub fn system(content: &str) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: &str) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: &str) -> Self {
        Self::new("assistant", content)
    }
}

/// A ChatML chat template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatTemplate {
    /// Inserted as the first message when the conversation has no system message first.
    pub default_system: Option<String>,
}

impl ChatTemplate {
    /// Plain ChatML with an optional default system message.
    pub fn chatml(default_system: Option<&str>) -> Self {
        Self { default_system: default_system.map(str::to_string) }
    }

    /// Recognises a ChatML Jinja template (for each message it writes `<|im_start|>`, the role,
    /// a newline, the content, `<|im_end|>` and a newline) and reads its default system
    /// message, if it has one. `file` names the model in errors.
    pub fn from_jinja(template: &str, file: &str) -> Result<Self> {
        let chatml = template.contains(START)
            && template.contains(END)
            && template.contains("message['role']")
            && template.contains("message['content']")
            && template.contains("add_generation_prompt");
        if !chatml {
            return Err(Error::Model {
                file: file.into(),
                detail: format!(
                    "its chat template is not ChatML (<|im_start|>role\\n...<|im_end|>); webformer renders ChatML templates only. The template begins: {:?}",
                    template.chars().take(120).collect::<String>()
                ),
            });
        }
        // A literal system turn in the template is the default system message. Its newline may
        // be a real newline or the two characters `\n` of a Jinja string escape.
        let head = format!("{START}system");
        let default_system = template.find(&head).and_then(|i| {
            let rest = &template[i + head.len()..];
            let rest = rest.strip_prefix('\n').or_else(|| rest.strip_prefix("\\n"))?;
            let end = rest.find(END)?;
            Some(rest[..end].to_string())
        });
        Ok(Self { default_system })
    }

    /// The prompt text for `messages`; `add_generation_prompt` opens the assistant's turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> String {
        let mut out = String::new();
        let turn = |out: &mut String, role: &str, content: &str| {
            out.push_str(START);
            out.push_str(role);
            out.push('\n');
            out.push_str(content);
            out.push_str(END);
            out.push('\n');
        };
        if let Some(sys) = &self.default_system {
            if messages.first().is_some_and(|m| m.role != "system") {
                turn(&mut out, "system", sys);
            }
        }
        for m in messages {
            turn(&mut out, &m.role, &m.content);
        }
        if add_generation_prompt {
            out.push_str(START);
            out.push_str("assistant\n");
        }
        out
    }
}
