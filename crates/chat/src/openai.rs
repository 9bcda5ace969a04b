//! [`OpenAiBackend`]: a [`ChatBackend`] for any OpenAI-compatible `POST {base}/chat/completions`
//! endpoint, with timeouts, retries with exponential backoff on 429/5xx/timeouts, and an optional
//! [`DiskCache`] of replies (feature `openai`).
//!
//! [`GenerationParams`] map to the request as `max_new_tokens` → `max_tokens`, `temperature`, and, only when set,
//! `top_p`, `stop` and `seed` (a seed of 0, the default, is not sent). `top_k` is not part of OpenAI's chat API:
//! a request with `top_k` set is refused before anything is sent.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{ChatBackend, Reply};
use crate::cache::DiskCache;
use crate::error::{ChatError, Result};
use crate::message::Message;
use crate::params::GenerationParams;

/// Environment variable holding the endpoint's base URL, e.g. `https://api.example.com/v1`.
pub const ENV_BASE_URL: &str = "TEMPER_JUDGE_BASE_URL";
/// Environment variable holding the API key, sent as `Authorization: Bearer <key>`.
pub const ENV_API_KEY: &str = "TEMPER_JUDGE_API_KEY";

/// The largest reply body read (4 MiB; a chat completion is a few KiB): a longer one is an error, so a hostile or
/// broken server cannot make the client buffer an endless body.
pub const MAX_REPLY_BYTES: u64 = 4 << 20;

/// Settings of an [`OpenAiBackend`]. Its `Debug` output shows the API key as `<redacted>`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Base URL; the request goes to `{base_url}/chat/completions`.
    pub base_url: String,
    /// Model name sent as `"model"`.
    pub model: String,
    /// Bearer token (none: no `Authorization` header).
    #[serde(default, skip_serializing)]
    pub api_key: Option<String>,
    /// Whole-request timeout in milliseconds (default 120 000).
    pub timeout_ms: u64,
    /// Retries after the first attempt on 429, 5xx, timeouts and connection errors (default 4).
    pub max_retries: u32,
    /// First backoff in milliseconds, doubled on each retry (default 1000).
    pub backoff_initial_ms: u64,
    /// Backoff cap in milliseconds, also caps a server's `Retry-After` (default 30 000).
    pub backoff_max_ms: u64,
    /// Directory of the reply cache (none: no caching).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("max_retries", &self.max_retries)
            .field("backoff_initial_ms", &self.backoff_initial_ms)
            .field("backoff_max_ms", &self.backoff_max_ms)
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

impl OpenAiConfig {
    /// A config for `base_url` and `model` with the default timeouts and retries, no key, no cache.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout_ms: 120_000,
            max_retries: 4,
            backoff_initial_ms: 1000,
            backoff_max_ms: 30_000,
            cache_dir: None,
        }
    }

    /// Reads [`ENV_BASE_URL`] (required) and [`ENV_API_KEY`] (optional) from the process environment.
    pub fn from_env(model: impl Into<String>) -> Result<Self> {
        Self::from_vars(model, |k| std::env::var(k).ok())
    }

    /// As [`OpenAiConfig::from_env`], reading variables through `var` (for tests and embedding).
    pub fn from_vars(
        model: impl Into<String>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let base = var(ENV_BASE_URL)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                ChatError::Config(format!("{ENV_BASE_URL} is not set (e.g. https://host/v1)"))
            })?;
        let mut c = Self::new(base, model);
        c.api_key = var(ENV_API_KEY).filter(|s| !s.is_empty());
        Ok(c)
    }

    /// `text` with every occurrence of the API key replaced by `<redacted>`: a hostile server may echo the
    /// `Authorization` header back in a body that ends up in an error message or a log line.
    pub fn redact(&self, text: &str) -> String {
        match self.api_key.as_deref() {
            Some(key) if !key.is_empty() => text.replace(key, "<redacted>"),
            _ => text.to_string(),
        }
    }

    /// The completions URL, `{base_url}/chat/completions` (one slash between).
    pub fn url(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// A [`ChatBackend`] over an OpenAI-compatible chat-completions endpoint. `Send + Sync`: share
/// one across worker threads (e.g. those of `temper_judges::judge_items`).
#[derive(Debug)]
pub struct OpenAiBackend {
    config: OpenAiConfig,
    agent: ureq::Agent,
    cache: Option<DiskCache>,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: WireMessages<'a>,
    #[serde(flatten)]
    params: WireParams<'a>,
}

/// The messages as OpenAI's API takes them: a tool call's `arguments` as a JSON-encoded string (Temper and HF chat
/// templates keep the object). A message without tool calls serializes exactly as [`Message`] does, so request
/// bodies without tool calls are unchanged.
struct WireMessages<'a>(&'a [Message]);

impl Serialize for WireMessages<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for m in self.0 {
            if m.tool_calls.is_empty() {
                seq.serialize_element(m)?;
                continue;
            }
            let mut v = serde_json::to_value(m).map_err(serde::ser::Error::custom)?;
            for call in v
                .get_mut("tool_calls")
                .and_then(|c| c.as_array_mut())
                .into_iter()
                .flatten()
            {
                if let Some(args) = call.pointer_mut("/function/arguments")
                    && !args.is_string()
                {
                    *args = serde_json::Value::String(args.to_string());
                }
            }
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

/// The generation parameters as sent on the wire (and hashed into the cache key): OpenAI's names, optional
/// fields only when set. With only `temperature` and `max_tokens` this serializes as the judge's old
/// parameters did, so caches written before the move still answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct WireParams<'a> {
    temperature: f64,
    max_tokens: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
}

impl<'a> WireParams<'a> {
    /// Checks `params` and maps them to OpenAI's request fields.
    pub(crate) fn new(params: &'a GenerationParams) -> Result<Self> {
        params
            .validate()
            .map_err(|e| ChatError::Config(format!("generation parameters: {e}")))?;
        if let Some(k) = params.top_k {
            return Err(ChatError::Config(format!(
                "top_k = {k} is not part of the OpenAI chat API; unset it (use top_p)"
            )));
        }
        Ok(Self {
            temperature: params.temperature,
            max_tokens: params.max_new_tokens,
            top_p: params.top_p,
            stop: &params.stop,
            seed: (params.seed != 0).then_some(params.seed),
        })
    }
}

enum Attempt {
    Done(Reply),
    Retry {
        message: String,
        retry_after: Option<Duration>,
    },
    Fail(ChatError),
}

impl OpenAiBackend {
    /// Builds the HTTP agent and opens the cache directory, if any.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(ChatError::Config(format!(
                "base URL must start with http:// or https://, got {:?}",
                config.base_url
            )));
        }
        // TLS: rustls with the webpki root certificates (ureq's defaults, never turned off), so a server whose
        // certificate does not chain to a public root is refused. The global timeout covers the whole call, from
        // connecting to the last byte of the body; redirects never carry the `Authorization` header (ureq's
        // default `RedirectAuthHeaders::Never`).
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(config.timeout_ms)))
            .https_only(config.base_url.starts_with("https://"))
            .build()
            .into();
        let cache = config.cache_dir.as_ref().map(DiskCache::new).transpose()?;
        Ok(Self {
            config,
            agent,
            cache,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    fn attempt(&self, url: &str, body: &str) -> Attempt {
        let mut req = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.config.api_key {
            req = req.header("Authorization", format!("Bearer {key}"));
        }
        let mut resp = match req.send(body) {
            Ok(r) => r,
            // A TLS failure (an untrusted or invalid certificate: rustls reports it as `InvalidData`) or another
            // protocol violation will not heal on a retry.
            Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Attempt::Fail(ChatError::Http {
                    url: url.to_string(),
                    message: self.config.redact(&e.to_string()),
                    attempts: 1,
                });
            }
            Err(
                e @ (ureq::Error::Timeout(_)
                | ureq::Error::Io(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::BodyStalled),
            ) => {
                return Attempt::Retry {
                    message: self.config.redact(&e.to_string()),
                    retry_after: None,
                };
            }
            Err(e) => {
                return Attempt::Fail(ChatError::Http {
                    url: url.to_string(),
                    message: self.config.redact(&e.to_string()),
                    attempts: 1,
                });
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let bytes = match resp
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
        {
            Ok(b) => b,
            Err(ureq::Error::BodyExceedsLimit(limit)) => {
                return Attempt::Fail(ChatError::MalformedReply {
                    url: url.to_string(),
                    message: format!("HTTP {status}: reply body longer than {limit} bytes"),
                    body: String::new(),
                });
            }
            Err(e) => {
                return Attempt::Retry {
                    message: self.config.redact(&format!("reading body: {e}")),
                    retry_after: None,
                };
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                return Attempt::Fail(ChatError::MalformedReply {
                    url: url.to_string(),
                    message: format!("HTTP {status}: reply body is not UTF-8 ({e})"),
                    body: String::new(),
                });
            }
        };
        let snippet: String = self.config.redact(&text).chars().take(200).collect();
        if status == 429 || (500..600).contains(&status) {
            return Attempt::Retry {
                message: format!("HTTP {status}: {snippet}"),
                retry_after,
            };
        }
        if !(200..300).contains(&status) {
            return Attempt::Fail(ChatError::Http {
                url: url.to_string(),
                message: format!("HTTP {status}: {snippet}"),
                attempts: 1,
            });
        }
        let malformed = |message: &str| {
            Attempt::Fail(ChatError::MalformedReply {
                url: url.to_string(),
                message: message.to_string(),
                body: snippet.clone(),
            })
        };
        let json: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return malformed(&format!("not JSON ({e})")),
        };
        // Step by step, not a JSON pointer: `/choices/0` would also accept an object with a key "0".
        let content = json
            .get("choices")
            .and_then(serde_json::Value::as_array)
            .and_then(|choices| choices.first())
            .and_then(|choice| choice.get("message"))
            .and_then(|message| message.get("content"))
            .and_then(serde_json::Value::as_str);
        match content {
            Some(c) => {
                let count = |field: &str| {
                    json.pointer(&format!("/usage/{field}"))
                        .and_then(serde_json::Value::as_u64)
                        .map(|n| n as usize)
                };
                Attempt::Done(Reply {
                    // Never cache or return the key, even when a hostile server echoes it back as the content.
                    text: self.config.redact(c),
                    prompt_tokens: count("prompt_tokens"),
                    completion_tokens: count("completion_tokens"),
                })
            }
            None => malformed("no string at choices[0].message.content"),
        }
    }
}

impl ChatBackend for OpenAiBackend {
    fn complete(&self, messages: &[Message], params: &GenerationParams) -> Result<String> {
        Ok(self.reply(messages, params)?.text)
    }

    /// The reply with the endpoint's `usage` counts (unknown for a reply served from the disk cache).
    fn reply(&self, messages: &[Message], params: &GenerationParams) -> Result<Reply> {
        let wire = WireParams::new(params)?;
        let key = self.cache.as_ref().map(|_| {
            DiskCache::wire_key(&self.config.base_url, &self.config.model, messages, &wire)
        });
        if let (Some(cache), Some(key)) = (&self.cache, &key)
            && let Some(reply) = cache.get(key)
        {
            tracing::debug!(key, "chat reply from cache");
            return Ok(Reply {
                text: reply,
                ..Reply::default()
            });
        }
        let url = self.config.url();
        let body = serde_json::to_string(&ChatRequest {
            model: &self.config.model,
            messages: WireMessages(messages),
            params: wire,
        })
        .map_err(|e| ChatError::Backend(format!("serializing request: {e}")))?;
        let max = Duration::from_millis(self.config.backoff_max_ms);
        let mut backoff = Duration::from_millis(self.config.backoff_initial_ms);
        let attempts = self.config.max_retries.saturating_add(1);
        for attempt in 1..=attempts {
            match self.attempt(&url, &body) {
                Attempt::Done(reply) => {
                    if let (Some(cache), Some(key)) = (&self.cache, &key) {
                        cache.put(key, &reply.text)?;
                    }
                    return Ok(reply);
                }
                Attempt::Fail(ChatError::Http { url, message, .. }) => {
                    return Err(ChatError::Http {
                        url,
                        message,
                        attempts: attempt,
                    });
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry {
                    message,
                    retry_after,
                } => {
                    if attempt == attempts {
                        return Err(ChatError::Http {
                            url,
                            message,
                            attempts,
                        });
                    }
                    let wait = retry_after.unwrap_or(backoff).min(max);
                    tracing::warn!(attempt, %message, wait_ms = wait.as_millis() as u64, "chat request failed; retrying");
                    std::thread::sleep(wait);
                    backoff = (backoff * 2).min(max);
                }
            }
        }
        Err(ChatError::Http {
            url,
            message: "no attempt made".into(),
            attempts: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_vars_and_url() {
        let vars = |k: &str| match k {
            ENV_BASE_URL => Some("http://127.0.0.1:9/v1/".to_string()),
            ENV_API_KEY => Some("sk-test".to_string()),
            _ => None,
        };
        let c = OpenAiConfig::from_vars("judge-m", vars).expect("config");
        assert_eq!(c.url(), "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(c.api_key.as_deref(), Some("sk-test"));
        assert_eq!(c.model, "judge-m");
        let e = OpenAiConfig::from_vars("m", |_| None)
            .expect_err("no base")
            .to_string();
        assert!(e.contains(ENV_BASE_URL), "{e}");
        assert!(OpenAiBackend::new(OpenAiConfig::new("ftp://x", "m")).is_err());
    }

    #[test]
    fn params_map_to_openai_fields_and_top_k_is_refused() {
        let greedy = GenerationParams::greedy(64);
        assert_eq!(
            serde_json::to_value(WireParams::new(&greedy).expect("valid")).expect("json"),
            serde_json::json!({"temperature": 0.0, "max_tokens": 64})
        );
        let full = GenerationParams {
            top_p: Some(0.9),
            stop: vec!["\n\n".into()],
            seed: 7,
            ..GenerationParams::greedy(8)
        };
        assert_eq!(
            serde_json::to_value(WireParams::new(&full).expect("valid")).expect("json"),
            serde_json::json!({"temperature": 0.0, "max_tokens": 8, "top_p": 0.9, "stop": ["\n\n"], "seed": 7})
        );
        let e = WireParams::new(&GenerationParams {
            top_k: Some(5),
            ..greedy.clone()
        })
        .expect_err("top_k")
        .to_string();
        assert!(e.contains("top_k = 5"), "{e}");
        let e = WireParams::new(&GenerationParams {
            temperature: -1.0,
            ..greedy
        })
        .expect_err("negative temperature")
        .to_string();
        assert!(
            e.starts_with("invalid configuration: generation parameters: temperature"),
            "{e}"
        );
    }
}
