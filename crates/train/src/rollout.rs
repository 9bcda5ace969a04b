//! On-line RL plumbing shared by GRPO, RLOO, PPO and CEM: prompt sources (built-in arithmetic task, JSONL,
//! GSM8K), chat rendering, batched rollouts from the generator (its log-probs kept as the old policy's),
//! reward scoring, and the scoring forward over `left-padded prompt + right-padded completion`.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use temper_chat::GenerationParams;
use temper_models::{AttentionInfo, CausalLm, GenerationConfig, generate};
use temper_rewards::{AnswerPrompt, ArithmeticConfig, ArithmeticTask, Reward, RewardInput, RewardSpec};
use temper_tensor_ops::EntropyMode;
use temper_tokenizer::{Message, SpecialIds, Tokenizer};

use crate::batch::int_tensor;
use crate::data::{PromptExample, parse_prompt, read_jsonl};
use crate::error::{Result, TrainError};

/// Where prompts come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskSpec {
    /// The built-in seeded arithmetic task with a disjoint held-out split.
    Arithmetic {
        /// Problem generator settings (digits, operations).
        #[serde(default)]
        config: ArithmeticConfig,
        /// Number of training problems.
        #[serde(default = "d_train_n")]
        train_size: usize,
        /// Number of held-out problems.
        #[serde(default = "d_eval_n")]
        eval_size: usize,
        /// Ask for `<think>` reasoning before the answer.
        #[serde(default)]
        think: bool,
        /// Worked examples shown before the question as earlier chat turns (`What is 6 - 2?` →
        /// `<answer>4</answer>`): they show the exact rewarded format without a fixed answer to copy. Drawn per
        /// prompt from a third split of the problem space, disjoint from training and held-out problems, each with
        /// an answer different from the question's. Default 1; 0 = none.
        #[serde(default = "d_shots")]
        shots: usize,
        /// The system instruction; default "Answer with only the final number inside <answer> </answer> tags." (or
        /// the `<think>` one with `think = true`).
        #[serde(default)]
        instruction: Option<String>,
        /// Text the assistant turn starts with (the completion continues it; rewards see both). The default
        /// `<answer>` primes a small model into the rewarded format.
        #[serde(default = "d_answer_prefill")]
        prefill: String,
    },
    /// JSONL prompts with `prompt` (or `question`) and an optional `answer`.
    Jsonl {
        /// Training prompts.
        train_file: PathBuf,
        /// Held-out prompts.
        #[serde(default)]
        eval_file: Option<PathBuf>,
        /// Text the assistant turn starts with (default none).
        #[serde(default)]
        prefill: String,
    },
}

/// The default system instruction of the arithmetic task. It names no example number: a fixed `42` example in
/// the instruction made SmolLM2-135M answer 42 to everything; the format is shown by the worked-example turns.
pub const ARITHMETIC_INSTRUCTION: &str = "Answer with only the final number inside <answer> </answer> tags.";

fn d_shots() -> usize {
    1
}

fn d_answer_prefill() -> String {
    "<answer>".into()
}

fn d_train_n() -> usize {
    2000
}
fn d_eval_n() -> usize {
    20
}

impl Default for TaskSpec {
    fn default() -> Self {
        TaskSpec::Arithmetic {
            config: ArithmeticConfig {
                digits: 1,
                ..ArithmeticConfig::default()
            },
            train_size: d_train_n(),
            eval_size: d_eval_n(),
            think: false,
            shots: d_shots(),
            instruction: None,
            prefill: d_answer_prefill(),
        }
    }
}

/// The seed's GRPO-zero rewards: strict answer accuracy (the `<answer>` tag holds the right number), partial
/// credit when the last number written is right (a dense signal for a small model that writes `3 + 4 = 7`), and
/// a small format bonus. The first reward is what evaluation reports as accuracy.
pub fn default_rewards() -> Vec<RewardSpec> {
    vec![
        RewardSpec::AnswerAccuracy {
            weight: 1.0,
            mode: Default::default(),
        },
        RewardSpec::LastNumberAccuracy { weight: 0.5 },
        RewardSpec::Format {
            weight: 0.2,
            regex: r"^\s*<answer>\s*-?[0-9][0-9,\.]*\s*</answer>\s*$".into(),
            dot_all: true,
        },
    ]
}

/// A prompt ready for generation.
#[derive(Clone, Debug)]
pub struct RenderedPrompt {
    /// The exact text given to the tokenizer.
    pub text: String,
    /// Its token ids.
    pub ids: Vec<u32>,
    /// Reference answer for rewards.
    pub reference: Option<String>,
    /// The start of the assistant turn already in `text`; rewards see `prefill + completion`.
    pub prefill: String,
}

/// Training and held-out prompts, rendered and tokenised.
pub struct PromptSet {
    /// Training prompts.
    pub train: Vec<RenderedPrompt>,
    /// Held-out prompts.
    pub eval: Vec<RenderedPrompt>,
}

/// A worked example: the question and the assistant's reply.
type Shot = (String, String);

/// The prompt text of one question: with `chat`, the model's chat template over the instruction (system), the
/// worked examples (user / assistant turns) and the question, with the assistant turn opened; without it, the
/// same as `Question: … / Answer: …` blocks.
fn render_one(
    tok: &Tokenizer,
    question: &str,
    instruction: Option<&str>,
    shots: &[Shot],
    chat: bool,
) -> Result<String> {
    if !chat {
        let mut text = instruction.map(|i| format!("{i}\n\n")).unwrap_or_default();
        for (q, a) in shots {
            text += &format!("Question: {}\nAnswer: {a}\n\n", q.trim());
        }
        return Ok(if instruction.is_none() && shots.is_empty() {
            question.to_string()
        } else {
            format!("{text}Question: {}\nAnswer: ", question.trim())
        });
    }
    let t = tok
        .chat_template()
        .ok_or_else(|| TrainError::Reward("generation.chat = true needs a model with a chat template".into()))?;
    let mut messages = Vec::new();
    if let Some(i) = instruction {
        messages.push(Message::system(i));
    }
    for (q, a) in shots {
        messages.push(Message::user(q.trim()));
        messages.push(Message::assistant(a.clone()));
    }
    messages.push(Message::user(question.trim()));
    Ok(t.render(&messages, true)?)
}

impl PromptSet {
    /// Builds the prompts of a task.
    pub fn build(task: &TaskSpec, tok: &Tokenizer, chat: bool, seed: u64) -> Result<Self> {
        type Examples = Vec<(PromptExample, Vec<Shot>)>;
        let (train, eval, instruction, prefill): (Examples, Examples, Option<String>, &str) = match task {
            TaskSpec::Arithmetic {
                config,
                train_size,
                eval_size,
                think,
                shots,
                instruction,
                prefill,
            } => {
                let config_err = |e: temper_rewards::RewardError| TrainError::Config {
                    path: PathBuf::from("[task]"),
                    message: e.to_string(),
                };
                let t = ArithmeticTask::new(config.clone(), seed).map_err(config_err)?;
                let format = AnswerPrompt { think: *think };
                let conv = |ps: Vec<temper_rewards::ArithmeticProblem>| -> Result<Examples> {
                    let examples = t.examples_for(&ps, *shots).map_err(config_err)?;
                    Ok(ps
                        .iter()
                        .zip(examples)
                        .map(|(p, ex)| {
                            let shots = ex.iter().map(|e| (e.question(), format.worked(e))).collect();
                            (
                                PromptExample {
                                    prompt: p.question(),
                                    reference: Some(p.reference()),
                                },
                                shots,
                            )
                        })
                        .collect())
                };
                let held = t.held_out(*eval_size).map_err(config_err)?;
                let default_instruction = if *think { format.instruction() } else { ARITHMETIC_INSTRUCTION };
                (
                    conv(t.train(*train_size))?,
                    conv(held)?,
                    Some(instruction.clone().unwrap_or_else(|| default_instruction.to_string())),
                    prefill.as_str(),
                )
            }
            TaskSpec::Jsonl {
                train_file,
                eval_file,
                prefill,
            } => {
                let plain = |xs: Vec<PromptExample>| xs.into_iter().map(|x| (x, Vec::new())).collect();
                (
                    plain(read_jsonl(train_file, parse_prompt)?),
                    match eval_file {
                        Some(p) => plain(read_jsonl(p, parse_prompt)?),
                        None => Vec::new(),
                    },
                    None,
                    prefill.as_str(),
                )
            }
        };
        let render = |xs: Examples| -> Result<Vec<RenderedPrompt>> {
            xs.into_iter()
                .map(|(x, shots)| {
                    let text = render_one(tok, &x.prompt, instruction.as_deref(), &shots, chat)? + prefill;
                    let ids = tok.encode(&text)?;
                    Ok(RenderedPrompt {
                        text,
                        ids,
                        reference: x.reference,
                        prefill: prefill.to_string(),
                    })
                })
                .collect()
        };
        Ok(Self {
            train: render(train)?,
            eval: render(eval)?,
        })
    }
}

/// Completions of a batch of prompts, `G` per prompt (rows `i·G..(i+1)·G` share prompt `i`).
#[derive(Clone, Debug)]
pub struct Rollout {
    /// Prompt ids per row.
    pub prompt_ids: Vec<Vec<u32>>,
    /// Completion ids per row (EOS included when sampled).
    pub completion_ids: Vec<Vec<u32>>,
    /// The generator's log-prob of each completion token under the plain model (temperature 1).
    pub gen_logps: Vec<Vec<f32>>,
    /// Decoded completions (special tokens skipped).
    pub texts: Vec<String>,
    /// Prompt texts per row.
    pub prompt_texts: Vec<String>,
    /// References per row.
    pub references: Vec<Option<String>>,
}

/// What a rollout needs besides the policy: the tokenizer (prompts are decoded with it, stop strings checked on
/// its decoding), its eos/pad ids ([`Tokenizer::special_ids`]) and the sampling parameters.
#[derive(Clone, Copy, Debug)]
pub struct Sampler<'a> {
    /// Decodes completions.
    pub tok: &'a Tokenizer,
    /// End-of-sequence (stops a completion) and padding ids.
    pub ids: SpecialIds,
    /// Sampling parameters; their `seed` is replaced by each call's.
    pub params: &'a GenerationParams,
}

/// Generates `g` completions for each prompt with the (non-autodiff) policy, seeded by `seed`.
pub fn rollout<M: CausalLm + ?Sized>(
    policy: &M,
    sampler: Sampler<'_>,
    prompts: &[&RenderedPrompt],
    g: usize,
    seed: u64,
    device: &Device,
) -> Result<Rollout> {
    let tok = sampler.tok;
    let mut config = GenerationConfig::new(sampler.params, sampler.ids);
    config.seed = seed;
    let rows: Vec<&RenderedPrompt> = prompts.iter().flat_map(|p| std::iter::repeat_n(*p, g)).collect();
    let ids: Vec<Vec<u32>> = rows.iter().map(|p| p.ids.clone()).collect();
    let decode = |ids: &[u32]| tok.decode(ids, true).unwrap_or_default();
    let decoder: Option<temper_models::Decoder<'_>> = if config.stop_strings.is_empty() { None } else { Some(&decode) };
    let gens = generate(policy, &ids, &config, device, decoder, |_, _| {})?;
    let mut r = Rollout {
        prompt_ids: Vec::new(),
        completion_ids: Vec::new(),
        gen_logps: Vec::new(),
        texts: Vec::new(),
        prompt_texts: Vec::new(),
        references: Vec::new(),
    };
    for (done, p) in gens.into_iter().zip(rows) {
        r.texts.push(format!("{}{}", p.prefill, tok.decode(&done.output_ids, true)?));
        r.prompt_ids.push(done.prompt_ids);
        r.completion_ids.push(done.output_ids);
        r.gen_logps.push(done.logprobs);
        r.prompt_texts.push(p.text.clone());
        r.references.push(p.reference.clone());
    }
    Ok(r)
}

impl Rollout {
    /// Number of completions.
    pub fn len(&self) -> usize {
        self.completion_ids.len()
    }

    /// True when there are no completions.
    pub fn is_empty(&self) -> bool {
        self.completion_ids.is_empty()
    }

    /// Scores every completion: `(name, weight, scores)` per part of `reward` ([`Reward::score_parts`]: a
    /// weighted sum's parts, or the reward itself), and the weighted total.
    pub fn score(&self, reward: &dyn Reward) -> Result<temper_rewards::ScoreBreakdown> {
        let inputs: Vec<RewardInput<'_>> = (0..self.len())
            .map(|i| RewardInput {
                prompt: &self.prompt_texts[i],
                completion: &self.texts[i],
                reference: self.references[i].as_deref(),
            })
            .collect();
        reward.score_parts(&inputs).map_err(|e| TrainError::Reward(e.to_string()))
    }

    /// Host tensors of rows `rows`: left-padded prompts + right-padded completions.
    pub fn pack(&self, rows: &[usize], pad: u32) -> Packed {
        let p = rows.iter().map(|&i| self.prompt_ids[i].len()).max().unwrap_or(0);
        let c = rows.iter().map(|&i| self.completion_ids[i].len()).max().unwrap_or(0).max(1);
        let mut packed = Packed {
            ids: Vec::new(),
            attention: Vec::new(),
            completion_mask: Vec::new(),
            gen_logps: Vec::new(),
            prompt_len: p,
            completion_len: c,
        };
        for &i in rows {
            let (pi, ci) = (&self.prompt_ids[i], &self.completion_ids[i]);
            let mut ids = vec![pad; p - pi.len()];
            ids.extend(pi);
            ids.extend(ci);
            ids.resize(p + c, pad);
            let mut att = vec![0u8; p - pi.len()];
            att.resize(p + ci.len(), 1);
            att.resize(p + c, 0);
            let mut cm = vec![1u8; ci.len()];
            cm.resize(c, 0);
            let mut lp = self.gen_logps[i].clone();
            lp.resize(c, 0.0);
            packed.ids.push(ids);
            packed.attention.push(att);
            packed.completion_mask.push(cm);
            packed.gen_logps.push(lp);
        }
        packed
    }
}

/// A packed slice of a rollout.
pub struct Packed {
    /// `[n, P + C]` token ids.
    pub ids: Vec<Vec<u32>>,
    /// `[n, P + C]` attention mask.
    pub attention: Vec<Vec<u8>>,
    /// `[n, C]` 1 on completion tokens.
    pub completion_mask: Vec<Vec<u8>>,
    /// `[n, C]` generator log-probs (0 on padding).
    pub gen_logps: Vec<Vec<f32>>,
    /// `P`.
    pub prompt_len: usize,
    /// `C`.
    pub completion_len: usize,
}

impl Packed {
    /// Per-token log-probs (and entropy) of the completion tokens: `[n, C]`. Positions follow the attention
    /// mask, exactly as during generation, so on-policy ratios are 1.
    pub fn completion_scores<M: CausalLm + ?Sized>(
        &self,
        model: &M,
        temperature: f64,
        entropy: EntropyMode,
        device: &Device,
    ) -> (Tensor<2>, Option<Tensor<2>>) {
        let n = self.ids.len();
        let (p, c) = (self.prompt_len, self.completion_len);
        let info = AttentionInfo::from_mask(&self.attention, true);
        let hidden = model.hidden(int_tensor(&self.ids, device), &info, None); // (n, P+C, H)
        let h = hidden.dims()[2];
        // Only completion positions need the (vocabulary-wide) LM head: P-1 .. P+C-1 predict the completion.
        let hidden = hidden.slice([0..n, p - 1..p - 1 + c, 0..h]); // (n, C, H)
        let mut logits = model.lm_head(hidden); // (n, C, V)
        if temperature != 1.0 {
            logits = logits / temperature;
        }
        let targets: Vec<Vec<u32>> = self.ids.iter().map(|r| r[p..p + c].to_vec()).collect();
        temper_tensor_ops::token_logprobs_entropy(logits, int_tensor(&targets, device), entropy)
    }

    /// `[n, C]` tensor of the completion mask.
    pub fn mask(&self, device: &Device) -> Tensor<2> {
        crate::batch::mask_tensor(&self.completion_mask, device)
    }

    /// `[n, C]` tensor of the generator's log-probs.
    pub fn gen_logps(&self, device: &Device) -> Tensor<2> {
        let n = self.gen_logps.len();
        let flat: Vec<f32> = self.gen_logps.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [n, self.completion_len]), device)
    }
}

/// Greedy held-out evaluation (at most `sampler.params.max_new_tokens` tokens, its stop strings): mean total reward
/// and mean of the first reward part (accuracy by convention).
pub fn evaluate<M: CausalLm + ?Sized>(
    policy: &M,
    sampler: Sampler<'_>,
    prompts: &[RenderedPrompt],
    reward: &dyn Reward,
    device: &Device,
) -> Result<Option<(f64, f64)>> {
    if prompts.is_empty() {
        return Ok(None);
    }
    let greedy = GenerationParams {
        temperature: 0.0,
        top_k: None,
        top_p: None,
        ..sampler.params.clone()
    };
    let sampler = Sampler {
        params: &greedy,
        ..sampler
    };
    let (mut total, mut first, mut n) = (0.0, 0.0, 0usize);
    for chunk in prompts.chunks(16) {
        let refs: Vec<&RenderedPrompt> = chunk.iter().collect();
        let r = rollout(policy, sampler, &refs, 1, 0, device)?;
        let s = r.score(reward)?;
        total += s.total.iter().sum::<f64>();
        if let Some((_, _, scores)) = s.parts.first() {
            first += scores.iter().sum::<f64>();
        }
        n += r.len();
    }
    Ok(Some((total / n as f64, first / n as f64)))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;

    fn tokenizer() -> Tokenizer {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/trl-parity/tokenizer/tokenizer.json");
        Tokenizer::from_file(&path).expect("tiny tokenizer")
    }

    /// `Question: What is a op b?\nAnswer: ` blocks of a plain prompt: (question, answer text) pairs.
    fn blocks(text: &str) -> Vec<(String, String)> {
        text.split("Question: ")
            .skip(1)
            .map(|b| {
                let (q, a) = b.split_once("\nAnswer: ").expect("answer line");
                (q.to_string(), a.trim_end().to_string())
            })
            .collect()
    }

    #[test]
    fn default_arithmetic_prompts_show_one_worked_example_that_is_never_the_question() -> Result<()> {
        let tok = tokenizer();
        let task = TaskSpec::default();
        let set = PromptSet::build(&task, &tok, false, 3)?;
        let TaskSpec::Arithmetic { config, .. } = &task else {
            unreachable!("the default task is arithmetic")
        };
        let t = ArithmeticTask::new(config.clone(), 3).map_err(|e| TrainError::Reward(e.to_string()))?;
        let eval_questions: HashSet<String> = t.held_out(20).map_err(|e| TrainError::Reward(e.to_string()))?
            .iter()
            .map(|p| p.question())
            .collect();
        let train_questions: HashSet<String> = t.train(2000).iter().map(|p| p.question()).collect();
        assert_eq!((set.train.len(), set.eval.len()), (2000, 20));
        let mut example_answers = HashSet::new();
        for p in set.train.iter().chain(&set.eval) {
            assert!(p.text.starts_with(&format!("{ARITHMETIC_INSTRUCTION}\n\nQuestion: ")), "{}", p.text);
            assert!(p.text.ends_with("\nAnswer: <answer>"), "{}", p.text);
            assert_eq!(p.prefill, "<answer>");
            let b = blocks(&p.text);
            assert_eq!(b.len(), 2, "one example, then the question: {}", p.text);
            let (ex_q, ex_a) = &b[0];
            let reference = p.reference.as_deref().expect("arithmetic has references");
            assert_ne!(ex_q, &b[1].0);
            assert!(!eval_questions.contains(ex_q) && !train_questions.contains(ex_q), "{ex_q} is a question");
            let n = ex_a.strip_prefix("<answer>").and_then(|a| a.strip_suffix("</answer>")).expect("worked format");
            assert_ne!(n, reference, "the example gives away the answer in {}", p.text);
            example_answers.insert(n.to_string());
        }
        assert!(example_answers.len() >= 10, "example answers {example_answers:?}");
        for p in &set.eval {
            assert!(eval_questions.contains(&blocks(&p.text)[1].0));
        }
        Ok(())
    }

    #[test]
    fn chat_prompts_put_the_example_in_earlier_turns_and_zero_shots_remove_it() -> Result<()> {
        let tok = tokenizer();
        let one = PromptSet::build(&TaskSpec::default(), &tok, true, 0)?;
        let zero_task = match TaskSpec::default() {
            TaskSpec::Arithmetic { config, train_size, eval_size, think, instruction, prefill, .. } => {
                TaskSpec::Arithmetic { config, train_size, eval_size, think, shots: 0, instruction, prefill }
            }
            other => other,
        };
        let zero = PromptSet::build(&zero_task, &tok, true, 0)?;
        for (a, b) in one.eval.iter().zip(&zero.eval) {
            // The tiny model's template renders `<|user|> … <|end|> <|assistant|> …`.
            assert_eq!(a.text.matches("<|user|>").count(), 2, "{}", a.text);
            assert_eq!(b.text.matches("<|user|>").count(), 1, "{}", b.text);
            // The instruction names the tags once; the worked example closes one more.
            assert_eq!(a.text.matches("</answer>").count(), 2, "{}", a.text);
            assert_eq!(b.text.matches("</answer>").count(), 1, "{}", b.text);
            assert!(a.text.ends_with("<|assistant|> <answer>") && b.text.ends_with("<|assistant|> <answer>"));
            assert_eq!(a.reference, b.reference);
            assert!(a.ids.len() > b.ids.len());
        }
        Ok(())
    }
}
