//! temper-tokenizer: exact SmolLM2 tokenization (byte-level BPE from a GGUF or a tokenizer.json) and HF chat templates.
//!
//! [`Tokenizer::from_gguf`] rebuilds the tokenizer from the GGUF's `tokenizer.ggml.*` keys with the
//! pre-tokenizer SmolLM2 really uses: every numeric character split on its own, then the GPT-2
//! byte-level regex (a tokenizer built from vocabulary and merges alone differs on `"  12"` or `" ½"`).
//! [`ChatTemplate`] renders `tokenizer.chat_template` byte-identically to transformers'
//! `apply_chat_template(..., tokenize=False)`.
//!
//! ```
//! use temper_tokenizer::{ChatTemplate, Message};
//!
//! let template = ChatTemplate::new(
//!     "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}\
//!      {% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
//!     "<|im_start|>",
//!     "<|im_end|>",
//! )?;
//! let text = template.render(&[Message::user("Hi!")], true)?;
//! assert_eq!(text, "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
//! # Ok::<(), temper_tokenizer::TokenizerError>(())
//! ```

mod chat;
mod chat_limits;
mod error;
mod tokenizer;

pub use chat::{ChatTemplate, TEMPLATE_FUEL, TEMPLATE_MAX_OUTPUT, TEMPLATE_RECURSION_LIMIT};
pub use chat_limits::{TEMPLATE_MAX_EMITTED, TEMPLATE_MAX_ITEMS, TEMPLATE_MAX_VALUE};
pub use error::TokenizerError;
pub use temper_chat::{Message, Role};
pub use tokenizer::{MAX_CONFIG_BYTES, MAX_TOKENIZER_JSON_BYTES, MAX_VOCAB, SpecialIds, Tokenizer};
