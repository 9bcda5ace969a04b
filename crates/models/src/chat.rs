//! [`LocalChat`]: a Temper model on this machine as a [`temper_chat::ChatBackend`] (feature `chat`).
//!
//! The messages are rendered with the model's chat template (or one given), encoded, and generated with
//! [`crate::generate`]: greedy at temperature 0, else seeded sampling with the request's temperature, top-k and
//! top-p; generation stops at EOS ([`Tokenizer::special_ids`]: the tokenizer's, else the model config's), at a
//! stop string, or after `max_new_tokens`. A trailing assistant message is a prefill (the start of the reply,
//! as in Anthropic's API): the model continues it and the reply is the continuation only.

use std::sync::{Mutex, MutexGuard};

use burn::tensor::Device;
use temper_chat::{ChatBackend, ChatError, GenerationParams, Message, Reply, Role};
use temper_tokenizer::{ChatTemplate, Tokenizer};

use crate::generate::{Decoder, GenerationConfig, generate};
use crate::llama::Llama;
use crate::load::LoadedModel;

/// A [`ChatBackend`] running a [`Llama`] on this machine. burn modules are `Send` but not `Sync`, so the
/// model sits behind a [`Mutex`]: calls from several threads run one at a time (give a pool of workers a
/// concurrency of 1).
pub struct LocalChat {
    inner: Mutex<Local>,
}

struct Local {
    model: Llama,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    device: Device,
    /// Tool schemas the template renders ([`ChatBackend::take_tools`]).
    tools: Option<Vec<serde_json::Value>>,
}

impl LocalChat {
    /// A back end over `model` and `tokenizer` on `device`; `template` overrides the tokenizer's chat
    /// template (required when the tokenizer has none).
    pub fn new(
        model: Llama,
        tokenizer: Tokenizer,
        template: Option<ChatTemplate>,
        device: Device,
    ) -> Result<Self, ChatError> {
        let template = match template {
            Some(t) => t,
            None => tokenizer.chat_template().cloned().ok_or_else(|| {
                ChatError::Config(
                    "this model has no chat template (a local chat back end needs one)".into(),
                )
            })?,
        };
        Ok(Self {
            inner: Mutex::new(Local {
                model,
                tokenizer,
                template,
                device,
                tools: None,
            }),
        })
    }

    /// A back end over a loaded checkpoint, which must carry a tokenizer with a chat template.
    pub fn from_loaded(loaded: LoadedModel, device: Device) -> Result<Self, ChatError> {
        let source = loaded.source.display().to_string();
        let tokenizer = loaded.tokenizer.ok_or_else(|| {
            ChatError::Config(format!(
                "{source} has no tokenizer (add tokenizer.json to its folder)"
            ))
        })?;
        Self::new(loaded.model, tokenizer, None, device).map_err(|e| match e {
            ChatError::Config(m) => ChatError::Config(format!("{source}: {m}")),
            other => other,
        })
    }

    /// The prompt text `messages` render to: the chat template with the generation prompt, then the prefill.
    pub fn prompt(&self, messages: &[Message]) -> Result<String, ChatError> {
        let local = self.lock()?;
        render_chat_prompt_with_tools(&local.template, messages, local.tools.as_deref())
    }

    fn lock(&self) -> Result<MutexGuard<'_, Local>, ChatError> {
        self.inner.lock().map_err(|_| {
            ChatError::Backend("local model lock poisoned by a panicked thread".into())
        })
    }
}

/// Renders `messages` with `template` and the generation prompt. A trailing [`Role::Assistant`] message is a
/// prefill: it is rendered after the generation prompt, unterminated, so the model continues it.
pub fn render_chat_prompt(
    template: &ChatTemplate,
    messages: &[Message],
) -> Result<String, ChatError> {
    render_chat_prompt_with_tools(template, messages, None)
}

/// [`render_chat_prompt`] with `tools` in the template's `tools` variable.
pub fn render_chat_prompt_with_tools(
    template: &ChatTemplate,
    messages: &[Message],
    tools: Option<&[serde_json::Value]>,
) -> Result<String, ChatError> {
    let (head, prefill) = match messages.split_last() {
        Some((last, head)) if last.role == Role::Assistant => (head, last.content.as_str()),
        _ => (messages, ""),
    };
    let mut text = template
        .render_with_tools(head, true, tools)
        .map_err(|e| ChatError::Backend(format!("rendering the chat template: {e}")))?;
    text.push_str(prefill);
    Ok(text)
}

/// The generation settings of one request: `params` with the stop and pad ids of [`Tokenizer::special_ids`].
fn generation_config(
    params: &GenerationParams,
    tokenizer: &Tokenizer,
    model: &Llama,
) -> GenerationConfig {
    GenerationConfig::new(params, tokenizer.special_ids(model.config().eos_token_id))
}

impl ChatBackend for LocalChat {
    fn complete(
        &self,
        messages: &[Message],
        params: &GenerationParams,
    ) -> Result<String, ChatError> {
        Ok(self.reply(messages, params)?.text)
    }

    /// The reply with the encoded prompt's length and the number of generated tokens (EOS included).
    fn reply(&self, messages: &[Message], params: &GenerationParams) -> Result<Reply, ChatError> {
        params.validate().map_err(ChatError::Config)?;
        let local = self.lock()?;
        let prompt =
            render_chat_prompt_with_tools(&local.template, messages, local.tools.as_deref())?;
        let backend = |e: &dyn std::fmt::Display| ChatError::Backend(e.to_string());
        let ids = local.tokenizer.encode(&prompt).map_err(|e| backend(&e))?;
        let prompt_tokens = ids.len();
        if ids.is_empty() {
            return Err(ChatError::Backend("the prompt encodes to no tokens".into()));
        }
        let ctx = local.model.config().max_position_embeddings;
        let max_new = params.max_new_tokens;
        if ids.len() + max_new > ctx {
            return Err(ChatError::Backend(format!(
                "prompt of {} tokens + {max_new} new tokens exceeds the model's context of {ctx}",
                ids.len()
            )));
        }
        let config = generation_config(params, &local.tokenizer, &local.model);
        let decode = |ids: &[u32]| local.tokenizer.decode(ids, true).unwrap_or_default();
        // Stop strings are matched on decoded text; without them no decoding happens during generation.
        let decoder: Option<Decoder<'_>> = if config.stop_strings.is_empty() {
            None
        } else {
            Some(&decode)
        };
        let gens = generate(
            &local.model,
            &[ids],
            &config,
            &local.device,
            decoder,
            |_, _| {},
        )
        .map_err(|e| backend(&e))?;
        let out = gens.first().map(|g| g.output_ids.as_slice()).unwrap_or(&[]);
        let text = local.tokenizer.decode(out, true).map_err(|e| backend(&e))?;
        Ok(Reply {
            text: text.trim().to_string(),
            prompt_tokens: Some(prompt_tokens),
            completion_tokens: Some(out.len()),
        })
    }

    /// Keeps `tools` for the template when it reads `tools` (Qwen2.5, Llama 3.1, Hermes style); otherwise
    /// declines, and the caller describes the tools in the system prompt.
    fn take_tools(&self, tools: &[serde_json::Value]) -> bool {
        let Ok(mut local) = self.lock() else {
            return false;
        };
        if !local.template.uses_tools() {
            return false;
        }
        local.tools = Some(tools.to_vec());
        true
    }
}
