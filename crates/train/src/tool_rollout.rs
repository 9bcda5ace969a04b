//! Multi-turn rollouts with tools, for on-line RL: the model writes until it closes a tool call, the
//! [`Environment`] runs the call, and its reply is appended to the completion as tokens the model did not sample.
//! Those tokens carry [`Rollout::loss_mask`] 0, so every on-line loss (and its KL term) skips them and their
//! gradient is exactly zero; the model's own tokens keep the generator's log-probs, equal to what the trainer
//! recomputes over the whole sequence. The layout is the one Search-R1 and ReTool train with: calls and results
//! inside one assistant completion, `… <tool_call>{…}</tool_call>\n<tool_response>{…}</tool_response>\n …`.

use burn::tensor::Device;
use temper_models::{CausalLm, FinishReason, GenerationConfig, generate};
use temper_tools::{Format, Registry, Step, step};

use crate::error::{Result, TrainError};
use crate::rollout::{RenderedPrompt, Rollout, Sampler};

/// What answers a model's tool calls during a rollout.
pub trait Environment {
    /// Strings that end a segment of generation so that [`Environment::respond`] can look at it (e.g.
    /// `</tool_call>`).
    fn stop_strings(&self) -> Vec<String>;

    /// The text to insert after `segment` (the model's text since the last response), or `None` when the
    /// completion goes on no further (an answer, no call, or `calls` already at the limit).
    fn respond(&self, segment: &str, calls: usize) -> Option<String>;
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
        ToolEnvironment { registry, max_calls }
    }
}

impl Environment for ToolEnvironment<'_> {
    fn stop_strings(&self) -> Vec<String> {
        vec!["</tool_call>".to_string()]
    }

    fn respond(&self, segment: &str, calls: usize) -> Option<String> {
        if calls >= self.max_calls || !segment.contains("<tool_call>") {
            return None;
        }
        let result = step(self.registry, Format::Hermes, None, calls + 1, segment);
        let observation = result.observation(Format::Hermes)?;
        // An unreadable call is answered with the error, in the same block a result would come in.
        let observation = match result {
            Step::Unreadable(_) => format!("<tool_response>\n{observation}\n</tool_response>"),
            _ => observation,
        };
        Some(format!("\n{}\n", observation.trim()))
    }
}

/// One completion as it grows.
#[derive(Default)]
struct Row {
    ids: Vec<u32>,
    logps: Vec<f32>,
    mask: Vec<u8>,
    calls: usize,
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
    let prompt_rows: Vec<&RenderedPrompt> = prompts.iter().flat_map(|p| std::iter::repeat_n(*p, g)).collect();
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
        config.max_new_tokens = active.iter().map(|&i| budget - rows[i].ids.len()).max().unwrap_or(0);
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
            let stopped_on_string = out.finish_reason == FinishReason::StopString && keep == out.output_ids.len();
            row.done = true;
            if !stopped_on_string || row.ids.len() >= budget {
                continue;
            }
            let segment = tok.decode(&out.output_ids, true)?;
            let Some(response) = env.respond(&segment, row.calls) else { continue };
            let response_ids = tok.encode(&response)?;
            if row.ids.len() + response_ids.len() >= budget {
                continue;
            }
            row.ids.extend(&response_ids);
            row.logps.resize(row.ids.len(), 0.0);
            row.mask.resize(row.ids.len(), 0);
            row.calls += 1;
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
        fn respond(&self, _segment: &str, calls: usize) -> Option<String> {
            (calls < 2).then(|| " t2 t3 t4".to_string())
        }
    }

    fn echo_rollout(max_new_tokens: usize) -> (Rollout, Tokenizer, Llama, Device) {
        let (model, tok, device) = tiny();
        let prompts = word_prompts(&tok, 4, 0);
        let refs: Vec<&RenderedPrompt> = prompts.train.iter().collect();
        let params = GenerationParams { max_new_tokens, ..tiny_generation() };
        let sampler = Sampler { tok: &tok, ids: tok.special_ids(model.config().eos_token_id), params: &params };
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
                    assert!(tok.decode(&ids[t - 1..t], true).expect("decode").trim().starts_with("t1"));
                    assert!(lps[t..t + response.len()].iter().all(|&l| l == 0.0));
                    inserted += 1;
                    t += response.len();
                } else {
                    t += 1;
                }
            }
            assert!(inserted <= 2 * (i + 1));
            assert_eq!(ro.loss_tokens(i), mask.iter().filter(|&&m| m == 1).count());
        }
        assert!(inserted > 0, "the tiny model never closed a segment: the test proves nothing");
        // The trainer's log-probs over the whole sequence equal the sampler's on the model's own tokens.
        let rows: Vec<usize> = (0..ro.len()).collect();
        let packed = ro.pack(&rows, 0);
        let (lp, _) = packed.completion_scores(&model, 1.0, EntropyMode::Skip, &device);
        let diff: f32 = (lp - packed.gen_logps(&device)).abs().mul(packed.mask(&device)).max().into_scalar();
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
        let advantages: Vec<f32> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { -0.5 }).collect();
        let mut inputs = GrpoInputs::new(
            leaf.clone(),
            packed.mask(&device),
            Tensor::<1>::from_data(TensorData::new(advantages, [n]), &device),
        );
        // A reference that differs from the policy, so the KL term has a gradient of its own.
        inputs.ref_logps = Some(leaf.clone().detach() - 0.3);
        let config = GrpoConfig { beta: 0.04, ..GrpoConfig::default() };
        let out = grpo_loss(&config, inputs).expect("grpo loss");
        let grads = out.loss.backward();
        let grad: Vec<f32> = leaf.grad(&grads).expect("gradient").into_data().try_to_vec::<f32>().expect("f32");
        let c = packed.completion_len;
        let (mut zero, mut live) = (0, 0);
        for (r, mask) in packed.completion_mask.iter().enumerate() {
            for (t, &m) in mask.iter().enumerate() {
                let g = grad[r * c + t];
                if m == 0 {
                    assert_eq!(g.to_bits(), 0.0f32.to_bits(), "row {r} token {t}: gradient {g} on a masked token");
                    zero += 1;
                } else {
                    assert!(g != 0.0, "row {r} token {t}: no gradient on a model token");
                    live += 1;
                }
            }
        }
        let tool_tokens: usize = ro.loss_mask.iter().flatten().filter(|&&m| m == 0).count();
        assert!(tool_tokens > 0 && zero >= tool_tokens && live > 0, "{tool_tokens} {zero} {live}");
    }

    #[test]
    fn the_tool_environment_runs_hermes_calls_and_reports_errors() {
        let mut registry = Registry::new();
        registry.register(calculator()).expect("register");
        let env = ToolEnvironment::new(&registry, 1);
        assert_eq!(env.stop_strings(), ["</tool_call>"]);
        let call = "Let me compute. <tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"12*7\"}}</tool_call>";
        let response = env.respond(call, 0).expect("a response");
        assert!(response.contains("<tool_response>") && response.contains("84"), "{response}");
        // The limit, plain text and an unreadable call.
        assert_eq!(env.respond(call, 1), None);
        assert_eq!(env.respond("The answer is 84.", 0), None);
        let bad = env.respond("<tool_call>{\"name\": \"calculator\", \"arguments\": </tool_call>", 0).expect("an error");
        assert!(bad.contains("<tool_response>") && bad.contains("could not be read"), "{bad}");
        let unknown = env.respond("<tool_call>{\"name\": \"rm\", \"arguments\": {}}</tool_call>", 0).expect("an error");
        assert!(unknown.contains("unknown tool"), "{unknown}");
    }
}
