//! The training runs `cargo xtask chaos` kills: one per trainer (and SFT with LoRA), each a tiny-model config of
//! [`STEPS`] steps with a checkpoint every [`SAVE_STEPS`].

use std::path::Path;

use anyhow::{Result, bail};

use super::{SAVE_STEPS, STEPS, toml_str};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algo {
    Sft,
    Dpo,
    Grpo,
    Rloo,
    Ppo,
    Cem,
    Rm,
    /// `temper sft` training LoRA adapters (the weights frozen).
    SftLora,
}

impl Algo {
    /// Every run, in the order `--algos all` takes them.
    pub(crate) const ALL: [Algo; 8] = [
        Algo::Sft,
        Algo::Dpo,
        Algo::Grpo,
        Algo::Rloo,
        Algo::Ppo,
        Algo::Cem,
        Algo::Rm,
        Algo::SftLora,
    ];

    /// What `cargo xtask chaos` runs without `--algos`.
    pub(crate) const DEFAULT: [Algo; 3] = [Algo::Sft, Algo::Dpo, Algo::Grpo];

    /// `sft,dpo,...` or `all`.
    pub(crate) fn parse_list(s: &str) -> Result<Vec<Algo>> {
        if s.trim() == "all" {
            return Ok(Algo::ALL.to_vec());
        }
        s.split(',')
            .map(|name| {
                Algo::ALL
                    .into_iter()
                    .find(|a| a.name() == name.trim())
                    .ok_or_else(|| {
                        let known: Vec<&str> = Algo::ALL.iter().map(|a| a.name()).collect();
                        anyhow::anyhow!(
                            "--algos: unknown algorithm `{name}` ({}, or all)",
                            known.join(", ")
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()
            .and_then(|v| {
                if v.is_empty() {
                    bail!("--algos: name at least one algorithm")
                }
                Ok(v)
            })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Algo::Sft => "sft",
            Algo::Dpo => "dpo",
            Algo::Grpo => "grpo",
            Algo::Rloo => "rloo",
            Algo::Ppo => "ppo",
            Algo::Cem => "cem",
            Algo::Rm => "rm",
            Algo::SftLora => "sft-lora",
        }
    }

    /// The `temper` subcommand.
    pub(crate) fn command(self) -> &'static str {
        match self {
            Algo::SftLora => "sft",
            other => other.name(),
        }
    }

    /// The run's TOML: the tiny model in `fixtures`, output in `out`.
    pub(crate) fn config(self, fixtures: &Path, out: &Path) -> String {
        let f = |name: &str| toml_str(&fixtures.join(name));
        let lora = if self == Algo::SftLora {
            "lora = { rank = 4, alpha = 8.0, dropout = 0.0, targets = [\"q_proj\", \"v_proj\"] }\n"
        } else {
            ""
        };
        let train = format!(
            "[train]\noutput_dir = {}\nsteps = {STEPS}\nbatch_size = 4\nmicro_batch_size = 2\nlearning_rate = 1e-3\n\
             warmup_steps = 1\nsave_steps = {SAVE_STEPS}\neval_steps = 3\nseed = 7\n{lora}",
            toml_str(out)
        );
        let model = f("model");
        // The on-line trainers share the rollout: prompts from files, two rule rewards with spread.
        let rollout = format!(
            "[rollout]\nmodel = {model}\nchat = false\n[rollout.task]\nkind = \"jsonl\"\ntrain_file = {}\n\
             eval_file = {}\n[rollout.generation]\nmax_new_tokens = 6\ntemperature = 1.0\nstop = []\n\
             [[rollout.reward]]\nkind = \"format\"\nregex = '^\\s*t[0-9]{{1,2}}\\b.*'\n\
             [[rollout.reward]]\nkind = \"length_penalty\"\nunit = \"words\"\ntarget = 3\nper_unit = 0.1\ncap = 1.0\n",
            f("prompts.jsonl"),
            f("prompts_eval.jsonl")
        );
        match self {
            Algo::Sft | Algo::SftLora => format!(
                "model = {model}\ntrain_file = {}\neval_file = {}\n{train}",
                f("sft.jsonl"),
                f("sft_eval.jsonl")
            ),
            Algo::Dpo => format!(
                "model = {model}\ntrain_file = {}\neval_file = {}\n{train}\n[dpo]\nbeta = 0.1\n",
                f("pairs.jsonl"),
                f("pairs_eval.jsonl")
            ),
            Algo::Rm => format!(
                "model = {model}\ntrain_file = {}\neval_file = {}\n{train}\n[rm]\ncenter_rewards_coefficient = 0.01\n",
                f("pairs.jsonl"),
                f("pairs_eval.jsonl")
            ),
            Algo::Grpo => format!("{rollout}{train}\n[grpo]\nnum_generations = 4\n"),
            Algo::Rloo => format!(
                "{rollout}{train}\n[rloo]\nnum_generations = 4\nbeta = 0.05\n"
            ),
            Algo::Ppo => {
                format!("ppo_epochs = 2\nnum_mini_batches = 2\n{rollout}{train}\n[ppo]\nkl_coef = 0.05\n")
            }
            Algo::Cem => format!(
                "{rollout}{train}\n[cem]\nnum_generations = 4\nelite_fraction = 0.5\nmin_elites = 1\nsft_steps = 1\n"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_lists_parse_and_unknown_names_are_refused() {
        assert_eq!(Algo::parse_list("all").expect("all"), Algo::ALL.to_vec());
        assert_eq!(
            Algo::parse_list("sft-lora, ppo").expect("two algorithms"),
            vec![Algo::SftLora, Algo::Ppo]
        );
        let err = Algo::parse_list("sft,nope").expect_err("nope is unknown").to_string();
        assert!(err.contains("`nope`") && err.contains("sft-lora"), "{err}");
        assert_eq!(Algo::SftLora.command(), "sft");
    }

    #[test]
    fn every_config_names_its_output_folder_and_the_lora_one_has_adapters() {
        for a in Algo::ALL {
            let c = a.config(Path::new("/f"), Path::new("/o"));
            assert!(c.contains("output_dir = \"/o\""), "{c}");
            assert_eq!(c.contains("lora = "), a == Algo::SftLora, "{c}");
        }
    }
}
