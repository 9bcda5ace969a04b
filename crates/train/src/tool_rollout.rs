//! Multi-turn rollouts with tools, for on-line RL: the model writes until it closes a tool call, the
//! [`Environment`] runs the call, and its reply is appended to the completion as tokens the model did not sample.
//! Those tokens carry [`Rollout::loss_mask`] 0, so every on-line loss (and its KL term) skips them and their
//! gradient is exactly zero; the model's own tokens keep the generator's log-probs, equal to what the trainer
//! recomputes over the whole sequence. The layout is the one Search-R1 and ReTool train with: calls and results
//! inside one assistant completion, `… <tool_call>{…}</tool_call>\n<tool_response>{…}</tool_response>\n …`.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use temper_models::{CausalLm, FinishReason, GenerationConfig, generate};
use temper_tasks::{Problem, RenderedPrompt};
use temper_tokenizer::Tokenizer;
use temper_tools::{Format, Registry, Step, ToolSpec, step, with_tools};

use crate::error::{Result, TrainError};
use crate::rollout::{Rollout, Sampler};
use crate::rollout_config::ToolsConfig;
use crate::session::Metrics;

/// What an [`Environment`] inserts after a segment: the text, and how many of the calls in it failed (unreadable,
/// unknown tool, invalid arguments, or the tool's own error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The text inserted into the completion (masked out of the loss).
    pub text: String,
    /// Failed calls among the segment's.
    pub errors: usize,
}

/// Tool use of one completion of a tool rollout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolStats {
    /// Rounds of calls answered.
    pub calls: usize,
    /// Failed calls among them.
    pub errors: usize,
}

/// What answers a model's tool calls during a rollout.
pub trait Environment {
    /// Strings that end a segment of generation so that [`Environment::respond`] can look at it (e.g.
    /// `</tool_call>`).
    fn stop_strings(&self) -> Vec<String>;

    /// What to insert after `segment` (the model's text since the last response), or `None` when the completion
    /// goes on no further (an answer, no call, or `calls` already at the limit).
    fn respond(&self, segment: &str, calls: usize) -> Option<Response>;
}

/// A run's tools (`[rollout.tools]`): their specs, the call format, and the [`Environment`] that answers calls;
/// renders prompts with the tools described.
pub struct ToolSetup {
    specs: Vec<ToolSpec>,
    format: Format,
    env: Box<dyn Environment>,
}

/// [`ToolEnvironment`] over a registry it owns.
struct OwnedTools {
    registry: Registry,
    max_calls: usize,
}

impl Environment for OwnedTools {
    fn stop_strings(&self) -> Vec<String> {
        ToolEnvironment::new(&self.registry, self.max_calls).stop_strings()
    }

    fn respond(&self, segment: &str, calls: usize) -> Option<Response> {
        ToolEnvironment::new(&self.registry, self.max_calls).respond(segment, calls)
    }
}

impl ToolSetup {
    /// The tools of `config` (checked; errors name the field).
    pub fn new(config: &ToolsConfig) -> Result<ToolSetup> {
        let err = |message: String| TrainError::Config {
            path: "[rollout.tools]".into(),
            message,
        };
        config.validate().map_err(err)?;
        let registry = config.registry().map_err(err)?;
        Ok(ToolSetup {
            specs: registry.specs(),
            format: Format::Hermes,
            env: Box::new(OwnedTools {
                registry,
                max_calls: config.max_calls,
            }),
        })
    }

    /// Any environment, described to the model by `specs` in the Hermes format (for tools that are not built in).
    pub fn with_environment(specs: Vec<ToolSpec>, env: Box<dyn Environment>) -> ToolSetup {
        ToolSetup {
            specs,
            format: Format::Hermes,
            env,
        }
    }

    /// The tools' specs.
    pub fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    /// The environment that answers the calls.
    pub fn environment(&self) -> &dyn Environment {
        self.env.as_ref()
    }

    /// Renders `problem` with the tools described to the model: through the chat template's own `tools` variable
    /// when the template reads it (Qwen2.5, Llama 3.1, Hermes style: [`temper_tokenizer::ChatTemplate::uses_tools`]),
    /// else the format's tool block appended to the system message ([`with_tools`]); then the one renderer.
    pub fn render(
        &self,
        tok: &Tokenizer,
        problem: &Problem,
        chat: bool,
    ) -> temper_tasks::Result<RenderedPrompt> {
        if chat && tok.chat_template().is_some_and(|t| t.uses_tools()) {
            let schemas: Vec<serde_json::Value> =
                self.specs.iter().map(ToolSpec::openai_json).collect();
            return temper_tasks::render_with_tools(tok, problem, true, Some(&schemas));
        }
        let with = Problem {
            messages: with_tools(problem.messages.clone(), self.format, &self.specs),
            ..problem.clone()
        };
        temper_tasks::render(tok, &with, chat)
    }
}

/// `tools/calls_per_completion` (rounds of calls answered), `tools/errors_per_completion` and
/// `tools/frac_with_call` of a tool rollout; empty for a rollout without tools.
pub fn tool_metrics(ro: &Rollout) -> Metrics {
    let mut m = Metrics::new();
    let n = ro.tool_stats.len();
    if n == 0 {
        return m;
    }
    let sum = |f: &dyn Fn(&ToolStats) -> usize| {
        ro.tool_stats.iter().map(f).sum::<usize>() as f64 / n as f64
    };
    m.insert("tools/calls_per_completion".into(), sum(&|s| s.calls));
    m.insert("tools/errors_per_completion".into(), sum(&|s| s.errors));
    m.insert(
        "tools/frac_with_call".into(),
        sum(&|s| usize::from(s.calls > 0)),
    );
    m
}

/// Tool calls in the Hermes/Qwen syntax (`<tool_call>{"name": …, "arguments": …}</tool_call>`), run through a
/// [`Registry`] (arguments validated first), answered with `<tool_response>` blocks; at most `max_calls` rounds per
/// completion. A call that cannot be read or fails is answered with the error, as the tool loop does.
pub struct ToolEnvironment<'a> {
    registry: &'a Registry,
    max_calls: usize,
}

impl<'a> ToolEnvironment<'a> {
    /// The environment over `registry`, with at most `max_calls` rounds of calls per completion.
    pub fn new(registry: &'a Registry, max_calls: usize) -> ToolEnvironment<'a> {
        ToolEnvironment {
            registry,
            max_calls,
        }
    }
}

impl Environment for ToolEnvironment<'_> {
    fn stop_strings(&self) -> Vec<String> {
        vec!["</tool_call>".to_string()]
    }

    fn respond(&self, segment: &str, calls: usize) -> Option<Response> {
        if calls >= self.max_calls || !segment.contains("<tool_call>") {
            return None;
        }
        let result = step(self.registry, Format::Hermes, None, calls + 1, segment);
        let observation = result.observation(Format::Hermes)?;
        // An unreadable call is answered with the error, in the same block a result would come in.
        let (observation, errors) = match &result {
            Step::Unreadable(_) => (
                format!("<tool_response>\n{observation}\n</tool_response>"),
                1,
            ),
            Step::Results { results, .. } => {
                (observation, results.iter().filter(|r| !r.ok).count())
            }
            Step::Answer(_) | Step::Stopped { .. } => (observation, 0),
        };
        Some(Response {
            text: format!("\n{}\n", observation.trim()),
            errors,
        })
    }
}

/// One completion as it grows.
#[derive(Default)]
struct Row {
    ids: Vec<u32>,
    logps: Vec<f32>,
    mask: Vec<u8>,
    stats: ToolStats,
    done: bool,
}

/// Generates `g` completions for each prompt like [`crate::rollout::rollout`], handing every closed tool call to
/// `env` and appending its response (masked out of the loss) before generation goes on. The token budget
/// (`sampler.params.max_new_tokens`) covers the model's tokens and the responses together; a response that does not
/// fit ends the completion. Every round of generation is seeded from `seed` and the round number.
pub fn tool_rollout<M: CausalLm + ?Sized>(
    policy: &M,
    sampler: Sampler<'_>,
    prompts: &[&RenderedPrompt],
    g: usize,
    seed: u64,
    env: &dyn Environment,
    device: &Device,
) -> Result<Rollout> {
    let tok = sampler.tok;
    let budget = sampler.params.max_new_tokens;
    let prompt_rows: Vec<&RenderedPrompt> = prompts
        .iter()
        .flat_map(|p| std::iter::repeat_n(*p, g))
        .collect();
    let mut rows: Vec<Row> = prompt_rows.iter().map(|_| Row::default()).collect();
    let decode = |ids: &[u32]| tok.decode(ids, true).unwrap_or_default();
    for round in 0u64.. {
        let active: Vec<usize> = (0..rows.len()).filter(|&i| !rows[i].done).collect();
        if active.is_empty() {
            break;
        }
        let mut config = GenerationConfig::new(sampler.params, sampler.ids);
        config.seed = seed.wrapping_add(round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        config.stop_strings.extend(env.stop_strings());
        config.max_new_tokens = active
            .iter()
            .map(|&i| budget - rows[i].ids.len())
            .max()
            .unwrap_or(0);
        let inputs: Vec<Vec<u32>> = active
            .iter()
            .map(|&i| [prompt_rows[i].ids.as_slice(), rows[i].ids.as_slice()].concat())
            .collect();
        let gens = generate(policy, &inputs, &config, device, Some(&decode), |_, _| {})?;
        for (&i, out) in active.iter().zip(gens) {
            let row = &mut rows[i];
            // A row with less budget left than the round's longest keeps only what fits.
            let keep = out.output_ids.len().min(budget - row.ids.len());
            row.ids.extend(&out.output_ids[..keep]);
            row.logps.extend(&out.logprobs[..keep]);
            row.mask.resize(row.ids.len(), 1);
            let stopped_on_string =
                out.finish_reason == FinishReason::StopString && keep == out.output_ids.len();
            row.done = true;
            if !stopped_on_string || row.ids.len() >= budget {
                continue;
            }
            let segment = tok.decode(&out.output_ids, true)?;
            let Some(response) = env.respond(&segment, row.stats.calls) else {
                continue;
            };
            let response_ids = tok.encode(&response.text)?;
            if row.ids.len() + response_ids.len() >= budget {
                continue;
            }
            row.ids.extend(&response_ids);
            row.logps.resize(row.ids.len(), 0.0);
            row.mask.resize(row.ids.len(), 0);
            row.stats.calls += 1;
            row.stats.errors += response.errors;
            row.done = false;
        }
        if round > budget as u64 {
            return Err(TrainError::Config {
                path: "[rollout.tools]".into(),
                message: "tool rounds did not end within the token budget".into(),
            });
        }
    }
    let mut r = Rollout::default();
    for (row, p) in rows.into_iter().zip(prompt_rows) {
        r.push(tok, p, row.ids, row.logps, row.mask)?;
        r.tool_stats.push(row.stats);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Tensor, TensorData};
    use temper_chat::GenerationParams;
    use temper_models::Llama;
    use temper_rl_objectives::{GrpoConfig, GrpoInputs, grpo_loss};
    use temper_tensor_ops::EntropyMode;
    use temper_tokenizer::Tokenizer;
    use temper_tools::builtins::calculator;

    use super::*;
    use crate::testkit::{tiny, tiny_generation, word_prompts};

    /// Ends a segment at any word starting with `t1` and answers with three fixed words, twice per completion.
    struct Echo;

    impl Environment for Echo {
        fn stop_strings(&self) -> Vec<String> {
            vec!["t1".into()]
        }
        fn respond(&self, _segment: &str, calls: usize) -> Option<Response> {
            (calls < 2).then(|| Response {
                text: " t2 t3 t4".to_string(),
                errors: calls,
            })
        }
    }

    fn echo_rollout(max_new_tokens: usize) -> (Rollout, Tokenizer, Llama, Device) {
        let (model, tok, device) = tiny();
        let prompts = word_prompts(&tok, 4, 0);
        let refs: Vec<&RenderedPrompt> = prompts.train.iter().collect();
        let params = GenerationParams {
            max_new_tokens,
            ..tiny_generation()
        };
        let sampler = Sampler {
            tok: &tok,
            ids: tok.special_ids(model.config().eos_token_id),
            params: &params,
        };
        let inner = device.clone().inner();
        let ro = tool_rollout(&model, sampler, &refs, 2, 7, &Echo, &inner).expect("tool rollout");
        (ro, tok, model, device)
    }

    #[test]
    fn responses_are_inserted_masked_and_the_model_tokens_keep_the_trainers_logprobs() {
        let (ro, tok, model, device) = echo_rollout(24);
        let response = tok.encode(" t2 t3 t4").expect("encode");
        let mut inserted = 0;
        for i in 0..ro.len() {
            let (ids, mask, lps) = (&ro.completion_ids[i], &ro.loss_mask[i], &ro.gen_logps[i]);
            assert_eq!((ids.len(), lps.len()), (mask.len(), mask.len()));
            assert!(ids.len() <= 24);
            // Every masked run is exactly one response, right after a sampled word starting with `t1`.
            let mut t = 0;
            while t < ids.len() {
                if mask[t] == 0 {
                    assert_eq!(&ids[t..t + response.len()], response.as_slice(), "row {i}");
                    assert!(mask[t..t + response.len()].iter().all(|&m| m == 0));
                    assert!(
                        tok.decode(&ids[t - 1..t], true)
                            .expect("decode")
                            .trim()
                            .starts_with("t1")
                    );
                    assert!(lps[t..t + response.len()].iter().all(|&l| l == 0.0));
                    inserted += 1;
                    t += response.len();
                } else {
                    t += 1;
                }
            }
            assert!(inserted <= 2 * (i + 1));
            // The stats count this row's responses; Echo reports `calls` errors on its `calls`-th response.
            let row_calls = ro.tool_stats[i].calls;
            assert_eq!(
                row_calls,
                mask.windows(2).filter(|w| w[0] == 1 && w[1] == 0).count(),
                "row {i}"
            );
            assert_eq!(
                ro.tool_stats[i].errors,
                row_calls * row_calls.saturating_sub(1) / 2,
                "row {i}"
            );
            assert_eq!(ro.loss_tokens(i), mask.iter().filter(|&&m| m == 1).count());
        }
        assert!(
            inserted > 0,
            "the tiny model never closed a segment: the test proves nothing"
        );
        let m = tool_metrics(&ro);
        let calls: usize = ro.tool_stats.iter().map(|s| s.calls).sum();
        assert_eq!(
            m["tools/calls_per_completion"],
            calls as f64 / ro.len() as f64
        );
        let with_call = ro.tool_stats.iter().filter(|s| s.calls > 0).count();
        assert_eq!(
            m["tools/frac_with_call"],
            with_call as f64 / ro.len() as f64
        );
        // The trainer's log-probs over the whole sequence equal the sampler's on the model's own tokens.
        let rows: Vec<usize> = (0..ro.len()).collect();
        let packed = ro.pack(&rows, 0);
        let (lp, _) = packed.completion_scores(&model, 1.0, EntropyMode::Skip, &device);
        let diff: f32 = (lp - packed.gen_logps(&device))
            .abs()
            .mul(packed.mask(&device))
            .max()
            .into_scalar();
        assert!(diff < 1e-4, "sampler vs trainer log-probs differ by {diff}");
    }

    #[test]
    fn the_loss_and_kl_gradient_on_tool_tokens_is_exactly_zero() {
        let (ro, _tok, model, device) = echo_rollout(24);
        let rows: Vec<usize> = (0..ro.len()).collect();
        let packed = ro.pack(&rows, 0);
        let (lp, _) = packed.completion_scores(&model, 1.0, EntropyMode::Skip, &device);
        let leaf = lp.detach().require_grad();
        let n = rows.len();
        let advantages: Vec<f32> = (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -0.5 })
            .collect();
        let mut inputs = GrpoInputs::new(
            leaf.clone(),
            packed.mask(&device),
            Tensor::<1>::from_data(TensorData::new(advantages, [n]), &device),
        );
        // A reference that differs from the policy, so the KL term has a gradient of its own.
        inputs.ref_logps = Some(leaf.clone().detach() - 0.3);
        let config = GrpoConfig {
            beta: 0.04,
            ..GrpoConfig::default()
        };
        let out = grpo_loss(&config, inputs).expect("grpo loss");
        let grads = out.loss.backward();
        let grad: Vec<f32> = leaf
            .grad(&grads)
            .expect("gradient")
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        let c = packed.completion_len;
        let (mut zero, mut live) = (0, 0);
        for (r, mask) in packed.completion_mask.iter().enumerate() {
            for (t, &m) in mask.iter().enumerate() {
                let g = grad[r * c + t];
                if m == 0 {
                    assert_eq!(
                        g.to_bits(),
                        0.0f32.to_bits(),
                        "row {r} token {t}: gradient {g} on a masked token"
                    );
                    zero += 1;
                } else {
                    assert!(g != 0.0, "row {r} token {t}: no gradient on a model token");
                    live += 1;
                }
            }
        }
        let tool_tokens: usize = ro.loss_mask.iter().flatten().filter(|&&m| m == 0).count();
        assert!(
            tool_tokens > 0 && zero >= tool_tokens && live > 0,
            "{tool_tokens} {zero} {live}"
        );
    }

    #[test]
    fn the_tool_environment_runs_hermes_calls_and_reports_errors() {
        let mut registry = Registry::new();
        registry.register(calculator()).expect("register");
        let env = ToolEnvironment::new(&registry, 1);
        assert_eq!(env.stop_strings(), ["</tool_call>"]);
        let call = "Let me compute. <tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"12*7\"}}</tool_call>";
        let response = env.respond(call, 0).expect("a response");
        assert!(
            response.text.contains("<tool_response>") && response.text.contains("84"),
            "{response:?}"
        );
        assert_eq!(response.errors, 0);
        // The limit, plain text and an unreadable call.
        assert_eq!(env.respond(call, 1), None);
        assert_eq!(env.respond("The answer is 84.", 0), None);
        let bad = env
            .respond(
                "<tool_call>{\"name\": \"calculator\", \"arguments\": </tool_call>",
                0,
            )
            .expect("an error");
        assert!(
            bad.text.contains("<tool_response>") && bad.text.contains("could not be read"),
            "{bad:?}"
        );
        assert_eq!(bad.errors, 1);
        let unknown = env
            .respond(
                "<tool_call>{\"name\": \"rm\", \"arguments\": {}}</tool_call>",
                0,
            )
            .expect("an error");
        assert!(
            unknown.text.contains("unknown tool") && unknown.errors == 1,
            "{unknown:?}"
        );
    }

    #[test]
    fn the_on_line_loop_samples_with_tools_masks_their_tokens_and_evaluates_with_them() {
        use crate::grpo::Grpo;
        use crate::online::OnlineTrainer;
        use crate::session::Session;
        use crate::testkit::{Collect, low_id_reward, settings, tmp};

        let (model, tok, device) = tiny();
        let out = tmp("tool-loop");
        let cfg = GrpoConfig {
            num_generations: 4,
            max_completion_length: 24,
            ..GrpoConfig::default()
        };
        let generation = GenerationParams {
            max_new_tokens: 24,
            ..tiny_generation()
        };
        let setup = ToolSetup::with_environment(Vec::new(), Box::new(Echo));
        let mut trainer = OnlineTrainer::with_task(
            &tok,
            generation,
            word_prompts(&tok, 8, 2),
            Box::new(low_id_reward()),
            Grpo::new(&model, cfg),
            0,
        )
        .expect("trainer")
        .with_tools(setup);
        let mut session =
            Session::start(model, &device, settings(&out, 2, 8, 4, 1e-3)).expect("session");
        let mut obs = Collect::default();
        trainer.train(&mut session, &mut obs).expect("train");
        for r in &obs.0 {
            let m = &r.metrics;
            assert!(
                m["tools/calls_per_completion"] > 0.0 && m["tools/frac_with_call"] > 0.0,
                "{m:?}"
            );
            assert!(
                m.contains_key("tools/errors_per_completion") && r.loss.is_finite(),
                "{m:?}"
            );
        }
        // The first step is on policy: with responses inserted, the trainer still recomputes the generator's
        // log-probs on the model's own tokens.
        assert!(
            obs.0[0].metrics["sampling/max_logprob_diff"] < 1e-4,
            "{:?}",
            obs.0[0].metrics
        );
        let ro = trainer.last_rollout().expect("a rollout");
        assert_eq!(ro.tool_stats.len(), ro.len());
        assert!(
            ro.loss_mask.iter().flatten().any(|&m| m == 0),
            "no tool token was masked"
        );
        let log = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
        assert_eq!(log.matches("eval/accuracy").count(), 2, "{log}");
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn every_online_algorithm_takes_rollout_tools_from_its_toml() {
        use std::path::Path;

        use crate::config::parse_toml;
        use crate::online::{OnlineConfig, start_online};
        use crate::testkit::{Collect, prompts_dir};
        use crate::{CemRunConfig, GrpoRunConfig, PpoRunConfig, RlooRunConfig};

        fn one_step<C: OnlineConfig>(
            extra: &str,
            name: &str,
        ) -> (Rollout, crate::session::Metrics) {
            let (model, tok, device) = tiny();
            let out = prompts_dir(&format!("tools-toml-{name}"));
            let text = format!(
                "{extra}[rollout]\nchat = false\n[rollout.task]\nkind = \"jsonl\"\ntrain_file = '{}'\n\
                 [rollout.generation]\nmax_new_tokens = 4\nstop = []\n\
                 [[rollout.reward]]\nkind = \"format\"\nregex = '.*'\n\
                 [rollout.tools]\ntools = [\"calculator\"]\nmax_calls = 1\n\
                 [train]\noutput_dir = '{}'\nsteps = 1\nbatch_size = 4\nsave_steps = 0\n",
                out.join("prompts.jsonl").display(),
                out.join("run").display()
            );
            let run: C = parse_toml(&text, Path::new("x.toml")).expect("parses");
            let (mut trainer, mut session) =
                start_online(&run, &tok, model, &device).expect("start");
            let mut obs = Collect::default();
            trainer.train(&mut session, &mut obs).expect("train");
            let _ = std::fs::remove_dir_all(&out);
            (
                trainer.last_rollout().expect("a rollout").clone(),
                obs.0[0].metrics.clone(),
            )
        }
        let runs = [
            ("grpo", one_step::<GrpoRunConfig>("", "grpo")),
            ("rloo", one_step::<RlooRunConfig>("", "rloo")),
            ("ppo", one_step::<PpoRunConfig>("ppo_epochs = 1\n", "ppo")),
            (
                "cem",
                one_step::<CemRunConfig>("[cem]\nnum_generations = 4\n", "cem"),
            ),
        ];
        for (name, (ro, m)) in runs {
            // The prompts describe the calculator; the rollout went through the tool path (one stats row each).
            assert!(
                ro.prompt_texts
                    .iter()
                    .all(|p| p.contains("<tools>") && p.contains("calculator")),
                "{name}"
            );
            assert_eq!(ro.tool_stats.len(), ro.len(), "{name}");
            assert!(
                m.contains_key("tools/calls_per_completion")
                    && m.contains_key("tools/frac_with_call"),
                "{name}: {m:?}"
            );
        }
    }
}
