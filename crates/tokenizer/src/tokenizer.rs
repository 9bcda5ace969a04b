//! `Tokenizer`: a `tokenizers::Tokenizer` built from GGUF metadata or a tokenizer.json, with special-token ids and the chat template.

use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use temper_gguf::{GgufFile, GgufValue};

use crate::{ChatTemplate, Message, TokenizerError};

/// GGUF `tokenizer.ggml.token_type` of control (special) tokens.
const TOKEN_TYPE_CONTROL: i64 = 3;
/// GGUF `tokenizer.ggml.token_type` of user-defined (added, not special) tokens.
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The `tokenizer.ggml.pre` values whose pre-tokenizer is "split each `\p{N}`, then GPT-2 byte level".
const DIGIT_SPLIT_PRE: [&str; 1] = ["smollm"];
/// The `tokenizer.ggml.pre` values whose pre-tokenizer is plain GPT-2 byte level.
const GPT2_PRE: [&str; 2] = ["gpt-2", "default"];

/// The largest `tokenizer.json` read (bytes). Real ones are far smaller (SmolLM2's 2.1 MB, Gemma 3's 33 MB); the
/// check is made on the file's size before anything is read, so an absurd file costs no memory.
pub const MAX_TOKENIZER_JSON_BYTES: u64 = 128 << 20;

/// The largest `tokenizer_config.json` or `chat_template.jinja` read (bytes).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The largest vocabulary accepted (tokens), from a tokenizer.json or a GGUF's `tokenizer.ggml.tokens`. The
/// largest real vocabularies are about 262,000 tokens (Gemma 3).
pub const MAX_VOCAB: usize = 1 << 21;

/// A text tokenizer with its special tokens and (optional) chat template.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    chat_template: Option<ChatTemplate>,
}

impl Tokenizer {
    /// Builds the byte-level BPE tokenizer described by a GGUF file's `tokenizer.ggml.*` keys.
    ///
    /// Supports `tokenizer.ggml.model = "gpt2"` with `tokenizer.ggml.pre` = `"smollm"` (each numeric
    /// character split on its own, then the GPT-2 byte-level regex, as SmolLM2's tokenizer.json does)
    /// or `"gpt-2"`/`"default"` (byte level only). Control tokens (type 3) become special added tokens,
    /// user-defined ones (type 4) added tokens; bytes with no token are dropped, like the reference.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        let path = gguf.path().to_path_buf();
        let model = gguf.get_str("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(TokenizerError::Unsupported {
                path,
                key: "tokenizer.ggml.model",
                value: model.into(),
                supported: "\"gpt2\" (byte-level BPE)",
            });
        }
        let pre = gguf
            .get("tokenizer.ggml.pre")
            .and_then(GgufValue::as_str)
            .unwrap_or("default");
        let digits_first = if DIGIT_SPLIT_PRE.contains(&pre) {
            true
        } else if GPT2_PRE.contains(&pre) {
            false
        } else {
            return Err(TokenizerError::Unsupported {
                path,
                key: "tokenizer.ggml.pre",
                value: pre.into(),
                supported: "\"smollm\", \"gpt-2\", \"default\"",
            });
        };

        let bad = |key: &'static str, index: usize, reason: String| TokenizerError::BadGgufVocab {
            path: path.clone(),
            key,
            index,
            reason,
        };
        let tokens = gguf.get_array("tokenizer.ggml.tokens")?;
        if tokens.len() > MAX_VOCAB {
            let reason = format!("{} tokens, more than the {MAX_VOCAB} accepted", tokens.len());
            return Err(bad("tokenizer.ggml.tokens", MAX_VOCAB, reason));
        }
        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        let mut names = Vec::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            let name = t.as_str().ok_or_else(|| {
                bad(
                    "tokenizer.ggml.tokens",
                    i,
                    format!("is a {}, expected a string", t.type_name()),
                )
            })?;
            if vocab.insert(name.to_string(), json!(i)).is_some() {
                return Err(bad(
                    "tokenizer.ggml.tokens",
                    i,
                    format!("duplicate token {name:?}"),
                ));
            }
            names.push(name);
        }
        let merges = gguf.get_array("tokenizer.ggml.merges")?;
        let mut merge_pairs = Vec::with_capacity(merges.len());
        for (i, m) in merges.iter().enumerate() {
            let pair = m
                .as_str()
                .and_then(|s| s.split_once(' '))
                .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains(' '));
            let (a, b) = pair.ok_or_else(|| {
                let shown = m
                    .as_str()
                    .map_or_else(|| format!("a {}", m.type_name()), |s| format!("{s:?}"));
                bad(
                    "tokenizer.ggml.merges",
                    i,
                    format!("{shown} is not two tokens separated by one space"),
                )
            })?;
            merge_pairs.push(json!([a, b]));
        }
        let mut added = Vec::new();
        if let Some(types) = gguf.get("tokenizer.ggml.token_type") {
            let types = types.as_array().ok_or_else(|| {
                bad(
                    "tokenizer.ggml.token_type",
                    0,
                    format!("is a {}, expected an array", types.type_name()),
                )
            })?;
            if types.len() != tokens.len() {
                return Err(bad(
                    "tokenizer.ggml.token_type",
                    types.len(),
                    format!("has {} entries for {} tokens", types.len(), tokens.len()),
                ));
            }
            for (i, ty) in types.iter().enumerate() {
                let ty = ty.as_i64().ok_or_else(|| {
                    bad(
                        "tokenizer.ggml.token_type",
                        i,
                        format!("is a {}, expected an integer", ty.type_name()),
                    )
                })?;
                if ty == TOKEN_TYPE_CONTROL || ty == TOKEN_TYPE_USER_DEFINED {
                    added.push(json!({
                        "id": i, "content": names[i], "single_word": false, "lstrip": false, "rstrip": false,
                        "normalized": false, "special": ty == TOKEN_TYPE_CONTROL,
                    }));
                }
            }
        }
        let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
        let pre_tokenizer = if digits_first {
            json!({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level]})
        } else {
            byte_level
        };
        let spec = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": merge_pairs,
            },
        });
        let inner: tokenizers::Tokenizer =
            spec.to_string()
                .parse()
                .map_err(|e: tokenizers::Error| TokenizerError::Build {
                    origin: path.clone(),
                    reason: e.to_string(),
                })?;

        let id = |key: &'static str| -> Result<Option<u32>, TokenizerError> {
            if gguf.get(key).is_none() {
                return Ok(None);
            }
            let v = gguf.get_u64(key)?;
            match u32::try_from(v)
                .ok()
                .filter(|&v| (v as usize) < names.len())
            {
                Some(v) => Ok(Some(v)),
                None => Err(TokenizerError::BadSpecialToken {
                    path: path.clone(),
                    key,
                    id: v,
                    vocab_size: names.len(),
                }),
            }
        };
        let (bos, eos, pad) = (
            id("tokenizer.ggml.bos_token_id")?,
            id("tokenizer.ggml.eos_token_id")?,
            id("tokenizer.ggml.padding_token_id")?,
        );
        let chat_template = match gguf.get("tokenizer.chat_template") {
            None => None,
            Some(_) => {
                let source = gguf.get_str("tokenizer.chat_template")?;
                let token = |id: Option<u32>| id.map_or("", |i| names[i as usize]);
                Some(ChatTemplate::new(source, token(bos), token(eos))?)
            }
        };
        Ok(Tokenizer {
            inner,
            bos,
            eos,
            pad,
            chat_template,
        })
    }

    /// Loads a HF `tokenizer.json`. When a `tokenizer_config.json` sits beside it, its `bos_token`,
    /// `eos_token`, `pad_token` and `chat_template` are used; a `chat_template.jinja` beside it
    /// takes precedence over the config's template (as in transformers 5).
    ///
    /// A file larger than [`MAX_TOKENIZER_JSON_BYTES`] (or a config beside it larger than [`MAX_CONFIG_BYTES`]) is
    /// refused before it is read, a vocabulary larger than [`MAX_VOCAB`] after it is parsed.
    pub fn from_file(tokenizer_json: &Path) -> Result<Tokenizer, TokenizerError> {
        check_size(tokenizer_json, MAX_TOKENIZER_JSON_BYTES)?;
        // tokenizers 0.22 panics on some malformed files instead of returning an error (`cargo xtask fuzz` found
        // one: a `decoder` object cut short); a bad file must be an error.
        let loaded = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_file(tokenizer_json)).map_err(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            TokenizerError::Build {
                origin: tokenizer_json.to_path_buf(),
                reason: format!("the tokenizers crate failed on the file: {message}"),
            }
        })?;
        let inner = loaded.map_err(|e| {
            if !tokenizer_json.exists() {
                TokenizerError::Io {
                    path: tokenizer_json.to_path_buf(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                }
            } else {
                TokenizerError::Build {
                    origin: tokenizer_json.to_path_buf(),
                    reason: e.to_string(),
                }
            }
        })?;
        let vocab_size = inner.get_vocab_size(true);
        if vocab_size > MAX_VOCAB {
            return Err(TokenizerError::Config {
                path: tokenizer_json.to_path_buf(),
                reason: format!("a vocabulary of {vocab_size} tokens, more than the {MAX_VOCAB} accepted"),
            });
        }
        let dir = tokenizer_json.parent().unwrap_or(Path::new("."));
        let config_path = dir.join("tokenizer_config.json");
        let config = if config_path.exists() {
            Some(read_json(&config_path)?)
        } else {
            None
        };
        let special = |field: &str| -> Result<Option<(String, u32)>, TokenizerError> {
            let Some(value) = config.as_ref().and_then(|c| c.get(field)) else {
                return Ok(None);
            };
            let content = match value {
                Json::Null => return Ok(None),
                Json::String(s) => s.as_str(),
                Json::Object(o) => o.get("content").and_then(Json::as_str).unwrap_or_default(),
                _ => "",
            };
            match inner.token_to_id(content) {
                Some(id) => Ok(Some((content.to_string(), id))),
                None => Err(TokenizerError::Config {
                    path: config_path.clone(),
                    reason: format!(
                        "{field} {value} is not a token of {}",
                        tokenizer_json.display()
                    ),
                }),
            }
        };
        let (bos, eos, pad) = (
            special("bos_token")?,
            special("eos_token")?,
            special("pad_token")?,
        );

        let jinja_path = dir.join("chat_template.jinja");
        let source = if jinja_path.exists() {
            check_size(&jinja_path, MAX_CONFIG_BYTES)?;
            Some(
                std::fs::read_to_string(&jinja_path).map_err(|source| TokenizerError::Io {
                    path: jinja_path,
                    source,
                })?,
            )
        } else {
            match config.as_ref().and_then(|c| c.get("chat_template")) {
                None | Some(Json::Null) => None,
                Some(Json::String(s)) => Some(s.clone()),
                Some(Json::Array(named)) => named_template(named, &config_path)?,
                Some(other) => {
                    return Err(TokenizerError::Config {
                        path: config_path,
                        reason: format!(
                            "chat_template is {other}, expected a string or a list of {{name, template}}"
                        ),
                    });
                }
            }
        };
        let name = |t: &Option<(String, u32)>| t.as_ref().map_or(String::new(), |(s, _)| s.clone());
        let chat_template = match source {
            Some(src) => Some(ChatTemplate::new(&src, &name(&bos), &name(&eos))?),
            None => None,
        };
        Ok(Tokenizer {
            inner,
            bos: bos.map(|(_, id)| id),
            eos: eos.map(|(_, id)| id),
            pad: pad.map(|(_, id)| id),
            chat_template,
        })
    }

    /// Token ids of `text`. No BOS/EOS is added; special tokens written in the text (`<|im_start|>`) are matched.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| TokenizerError::Encode {
                text_start: text.chars().take(40).collect(),
                reason: e.to_string(),
            })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`; with `skip_special` the special tokens (BOS, EOS, control tokens) are left out.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, TokenizerError> {
        let vocab_size = self.vocab_size();
        if let Some((position, &id)) = ids
            .iter()
            .enumerate()
            .find(|(_, id)| **id as usize >= vocab_size)
        {
            return Err(TokenizerError::UnknownId {
                id,
                position,
                vocab_size,
            });
        }
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| TokenizerError::Decode {
                reason: e.to_string(),
            })
    }

    /// The beginning-of-sequence token id, if any.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence token id, if any.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// The padding token id, if any.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// The files transformers writes for a tokenizer (`save_pretrained` in transformers 5), so that an exported
    /// folder loads with `AutoTokenizer.from_pretrained` — and with [`Tokenizer::from_file`] — with the same special
    /// tokens and chat template: `tokenizer.json`, `tokenizer_config.json` (special tokens, `model_max_length`),
    /// `special_tokens_map.json`, and `chat_template.jinja` holding the template byte for byte as it was read.
    pub fn hf_files(&self, model_max_length: Option<usize>) -> Result<Vec<(String, Vec<u8>)>, TokenizerError> {
        let build = |reason: String| TokenizerError::Build {
            origin: PathBuf::from("<export>"),
            reason,
        };
        let tokenizer_json = self.inner.to_string(false).map_err(|e| build(format!("serialising tokenizer.json: {e}")))?;
        let token = |id: Option<u32>| -> Result<Option<String>, TokenizerError> {
            id.map(|i| self.inner.id_to_token(i).ok_or_else(|| build(format!("special token id {i} is not in the vocabulary"))))
                .transpose()
        };
        let (bos, eos, pad) = (token(self.bos)?, token(self.eos)?, token(self.pad)?);
        let mut special = serde_json::Map::new();
        for (key, value) in [("bos_token", &bos), ("eos_token", &eos), ("pad_token", &pad)] {
            if let Some(v) = value {
                special.insert(key.into(), json!(v));
            }
        }
        let mut config = special.clone();
        config.insert("clean_up_tokenization_spaces".into(), json!(false));
        config.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
        if let Some(n) = model_max_length {
            config.insert("model_max_length".into(), json!(n));
        }
        let pretty = |v: &Json| serde_json::to_vec_pretty(v).map_err(|e| build(format!("serialising JSON: {e}")));
        let mut files = vec![
            ("tokenizer.json".to_string(), tokenizer_json.into_bytes()),
            ("tokenizer_config.json".to_string(), pretty(&Json::Object(config))?),
            ("special_tokens_map.json".to_string(), pretty(&Json::Object(special))?),
        ];
        if let Some(t) = &self.chat_template {
            files.push(("chat_template.jinja".to_string(), t.original_source().as_bytes().to_vec()));
        }
        Ok(files)
    }

    /// The `tokenizer.*` metadata of a GGUF file that rebuilds this tokenizer in llama.cpp (and in
    /// [`Tokenizer::from_gguf`]): `tokenizer.ggml.model = "gpt2"`, `pre` (`"smollm"` for the digit-split
    /// pre-tokenizer, `"gpt-2"` for plain byte level), the tokens by id, their types (1 normal, 3 control = special
    /// added token, 4 user-defined = other added token), the merges as `"a b"`, the special ids, and the chat
    /// template as it was read. Only byte-level BPE tokenizers can be written (what GGUF's `gpt2` model is).
    pub fn gguf_metadata(&self) -> Result<Vec<(String, GgufValue)>, TokenizerError> {
        let unsupported = |reason: String| TokenizerError::Build {
            origin: PathBuf::from("<gguf export>"),
            reason,
        };
        let spec: Json = serde_json::from_str(
            &self.inner.to_string(false).map_err(|e| unsupported(format!("serialising the tokenizer: {e}")))?,
        )
        .map_err(|e| unsupported(format!("reading the serialised tokenizer: {e}")))?;
        let model = &spec["model"];
        if model["type"] != "BPE" {
            return Err(unsupported(format!("GGUF's gpt2 tokenizer needs a BPE model, this one is {}", model["type"])));
        }
        let byte_level = |v: &Json| v["type"] == "ByteLevel";
        let pre = &spec["pre_tokenizer"];
        let pre_name = if byte_level(pre) {
            "gpt-2"
        } else if pre["type"] == "Sequence"
            && pre["pretokenizers"].as_array().is_some_and(|p| {
                p.len() == 2 && p[0]["type"] == "Digits" && p[0]["individual_digits"] == true && byte_level(&p[1])
            })
        {
            "smollm"
        } else {
            return Err(unsupported(format!("no GGUF pre-tokenizer type matches {pre}")));
        };
        let n = self.vocab_size();
        let mut tokens = vec![None; n];
        if let Some(vocab) = model["vocab"].as_object() {
            for (name, id) in vocab {
                if let Some(slot) = id.as_u64().and_then(|i| tokens.get_mut(i as usize)) {
                    *slot = Some(name.clone());
                }
            }
        }
        let mut types = vec![1i32; n];
        for added in spec["added_tokens"].as_array().into_iter().flatten() {
            if let (Some(id), Some(content)) = (added["id"].as_u64(), added["content"].as_str())
                && (id as usize) < n
            {
                tokens[id as usize] = Some(content.to_string());
                types[id as usize] = if added["special"] == true { TOKEN_TYPE_CONTROL as i32 } else { TOKEN_TYPE_USER_DEFINED as i32 };
            }
        }
        let tokens: Vec<GgufValue> = tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| t.map(GgufValue::String).ok_or_else(|| unsupported(format!("token id {i} has no token"))))
            .collect::<Result<_, _>>()?;
        let merges: Vec<GgufValue> = model["merges"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| match m {
                Json::String(s) => Ok(GgufValue::String(s.clone())),
                Json::Array(pair) if pair.len() == 2 => match (pair[0].as_str(), pair[1].as_str()) {
                    (Some(a), Some(b)) => Ok(GgufValue::String(format!("{a} {b}"))),
                    _ => Err(unsupported(format!("merge {m} is not two strings"))),
                },
                other => Err(unsupported(format!("merge {other} is not a pair"))),
            })
            .collect::<Result<_, _>>()?;
        let mut meta = vec![
            ("tokenizer.ggml.model".to_string(), GgufValue::String("gpt2".into())),
            ("tokenizer.ggml.pre".to_string(), GgufValue::String(pre_name.into())),
            ("tokenizer.ggml.tokens".to_string(), GgufValue::Array(tokens)),
            ("tokenizer.ggml.token_type".to_string(), GgufValue::Array(types.into_iter().map(GgufValue::I32).collect())),
            ("tokenizer.ggml.merges".to_string(), GgufValue::Array(merges)),
        ];
        for (key, id) in [
            ("tokenizer.ggml.bos_token_id", self.bos),
            ("tokenizer.ggml.eos_token_id", self.eos),
            ("tokenizer.ggml.padding_token_id", self.pad),
        ] {
            if let Some(id) = id {
                meta.push((key.to_string(), GgufValue::U32(id)));
            }
        }
        // Temper never adds BOS or a leading space when encoding; say so, so llama.cpp does the same.
        meta.push(("tokenizer.ggml.add_bos_token".to_string(), GgufValue::Bool(false)));
        meta.push(("tokenizer.ggml.add_space_prefix".to_string(), GgufValue::Bool(false)));
        if let Some(t) = &self.chat_template {
            meta.push(("tokenizer.chat_template".to_string(), GgufValue::String(t.original_source().to_string())));
        }
        Ok(meta)
    }

    /// The one rule for the ids that end and pad a sequence: EOS is the tokenizer's, else the model config's
    /// (`model_eos`); padding is the tokenizer's pad token, else EOS, else 0 (padding is never attended to, so
    /// any id works once the mask hides it).
    pub fn special_ids(&self, model_eos: Option<u32>) -> SpecialIds {
        let eos = self.eos.or(model_eos);
        SpecialIds {
            eos,
            pad: self.pad.or(eos).unwrap_or(0),
        }
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The id of a token given by its (byte-level) string, e.g. `"<|im_end|>"` or `"Ġworld"`.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The (byte-level) string of a token id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The chat template, if the tokenizer has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// Renders `messages` with the chat template (see [`ChatTemplate::render`]).
    pub fn apply_chat_template(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        self.chat_template
            .as_ref()
            .ok_or(TokenizerError::NoChatTemplate)?
            .render(messages, add_generation_prompt)
    }
}

/// The ids that end and pad sequences, from [`Tokenizer::special_ids`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    /// End of sequence, if the tokenizer or the model names one.
    pub eos: Option<u32>,
    /// Left/right padding.
    pub pad: u32,
}

impl SpecialIds {
    /// The ids that stop generation: EOS, when there is one.
    pub fn stop_ids(&self) -> Vec<u32> {
        self.eos.into_iter().collect()
    }
}

/// Refuses `path` when it is larger than `max` bytes (a missing file is left to the reader to report).
fn check_size(path: &Path, max: u64) -> Result<(), TokenizerError> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > max => Err(TokenizerError::Config {
            path: path.to_path_buf(),
            reason: format!("the file has {} bytes, more than the {max} accepted", m.len()),
        }),
        _ => Ok(()),
    }
}

fn read_json(path: &PathBuf) -> Result<Json, TokenizerError> {
    check_size(path, MAX_CONFIG_BYTES)?;
    let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| TokenizerError::Config {
        path: path.clone(),
        reason: e.to_string(),
    })
}

/// The `default` entry of a `[{name, template}]` chat_template list.
fn named_template(named: &[Json], path: &Path) -> Result<Option<String>, TokenizerError> {
    for entry in named {
        if entry.get("name").and_then(Json::as_str) == Some("default") {
            return match entry.get("template").and_then(Json::as_str) {
                Some(t) => Ok(Some(t.to_string())),
                None => Err(TokenizerError::Config {
                    path: path.to_path_buf(),
                    reason: "chat_template entry \"default\" has no string \"template\"".into(),
                }),
            };
        }
    }
    Ok(None)
}
