"""Baseline for `cargo xtask bench --vs trl`: optimizer steps of TRL's SFTTrainer, DPOTrainer or GRPOTrainer on SmolLM2.

One bench per process (`--only sft|dpo|grpo`), the same work as `crates/train/benches/steps.rs --process`, on the
same token ids (SFT, DPO) or prompts (GRPO):
- the SmolLM2 GGUF loaded with transformers, every tensor dequantized to float32 (cached as an HF folder, see `load`);
- SFT: 4 sequences x 128 tokens, a pre-tokenized language-modelling data set (loss on every target token);
- DPO: 2 pairs (4 sequences) x 128 tokens (prompt 64 + completion 64), sigmoid loss, beta = 0.1, reference
  log-probs precomputed before training (`precompute_ref_log_probs=True`, computed by TRL's own
  `_precompute_ref_logps`);
- f32 (`bf16=False`), no gradient checkpointing (TRL's configs default to it; Temper does not recompute
  activations), AdamW with the HF defaults, global-norm clip 1.0, torch threads = 2 (`--threads`).
- GRPO: 2 plain-text prompts of `--prompts` (JSONL, `prompt`) x 4 completions of at most 32 new tokens, sampled
  by TRL's default transformers `generate` at temperature 1 (EOS or the cap ends one), reward
  -min(1, 0.01 * characters), DAPO loss with beta = 0.04 (a frozen reference: a second copy of the same GGUF,
  which TRL would load from the policy's path), epsilon = 0.2, epsilon_high = 0.28.

A step is timed by a `TrainerCallback` from `on_step_begin` to `on_step_end` inside `Trainer.train()`: TRL's
`training_step` (forward, loss, backward), gradient clipping, `optimizer.step()`, the scheduler and `zero_grad`.
For GRPO the step includes sampling; `_generate` is timed on its own (`generate_seconds`). The first `--warmup`
steps are dropped. Prints one JSON object as the last line of stdout: the timed steps' seconds, the peak RSS of
this process (`VmHWM` of /proc/self/status, read at its end: the same measure as the Rust side), the versions.
"""
import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
import trl.trainer.grpo_trainer as grpo_module  # noqa: E402
from trl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer  # noqa: E402

LEN = 128
PROMPT = 64
GRPO_PROMPTS = 2
GRPO_GENERATIONS = 4
GRPO_MAX_NEW = 32


def row(b, length):
    """Row `b` of the benchmark's token ids (the same formula as the Rust benches)."""
    return [100 + (b * 7919 + t * 104729) % 40000 for t in range(length)]


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step, from `on_step_begin` to `on_step_end`."""

    def __init__(self):
        self.times = []
        self._t0 = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._t0)


def load(gguf):
    """The GGUF dequantized to float32, through a cached HF copy: `gguf`'s Python reader parses the 49,152-token
    vocabulary field by field, minutes per load on a busy 2-core machine, and every bench process loads the model.
    The copy is written once (atomically: a temporary folder renamed into place) next to the bench venv."""
    cache = os.path.join(os.path.dirname(os.path.dirname(gguf)), "bench-venv", "hf-f32-" + os.path.basename(gguf))
    if not os.path.isdir(cache):
        model, tok = load_gguf(gguf)
        tmp = f"{cache}.tmp{os.getpid()}"
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, cache)
    model = AutoModelForCausalLM.from_pretrained(cache, dtype=torch.float32)
    if not all(p.dtype == torch.float32 for p in model.parameters()):
        sys.exit(f"{cache}: non-float32 parameters")
    tok = AutoTokenizer.from_pretrained(cache)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def load_gguf(gguf):
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(gguf), gguf_file=os.path.basename(gguf), dtype=torch.float32
    )
    # Every GGUF tensor is now a plain float32 `nn.Linear` / `nn.Embedding` weight, but transformers still tags the
    # model with its `GgufHfQuantizer`, and `Trainer` refuses to fine-tune a "quantized" model. Nothing is quantized
    # any more, so the tag is dropped.
    if not all(p.dtype == torch.float32 for p in model.parameters()):
        sys.exit("the dequantized GGUF model has non-float32 parameters")
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def common(out, steps, batch, lr):
    """Trainer settings shared by both runs: the same work as Temper's bench, nothing logged or saved."""
    return dict(
        output_dir=out,
        max_steps=steps,
        per_device_train_batch_size=batch,
        gradient_accumulation_steps=1,
        learning_rate=lr,
        max_length=LEN,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        report_to="none",
        logging_steps=10**9,
        save_strategy="no",
        eval_strategy="no",
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )


def timed(times, warmup, name):
    measured = times[warmup:]
    if not measured:
        sys.exit(f"{name}: no step was timed after {warmup} warm-up steps ({len(times)} in all)")
    return measured


def vm_hwm_kib():
    """Peak resident set size of this process in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    sys.exit("no VmHWM line in /proc/self/status")


def bench_sft(gguf, steps, warmup):
    model, tok = load(gguf)
    n = warmup + steps
    data = Dataset.from_dict({"input_ids": [row(i % 4, LEN) for i in range(4 * n)]})
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(**common(out, n, 4, 2e-5))
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok, callbacks=[timer])
        trainer.train()
    return {"seconds": timed(timer.times, warmup, "sft")}


def bench_dpo(gguf, steps, warmup):
    model, tok = load(gguf)
    n = warmup + steps
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(**common(out, n, 2, 1e-6), beta=0.1, loss_type=["sigmoid"], precompute_ref_log_probs=True)
        # DPOTrainer tokenizes text; the constructor gets a one-pair text set, then the train set is replaced by the
        # bench's token ids (prompt 64 + completion 64, as in the Rust bench) with reference log-probs computed by
        # TRL's own precompute pass, exactly as the constructor does for a text set.
        text = Dataset.from_dict({"prompt": ["Hello"], "chosen": [" world"], "rejected": [" there"]})
        trainer = DPOTrainer(model=model, args=args, train_dataset=text, processing_class=tok, callbacks=[timer])
        pairs = [(row(i % 2, LEN), row(2 + i % 2, LEN)) for i in range(2 * n)]
        ids = Dataset.from_dict(
            {
                "prompt_ids": [c[:PROMPT] for c, _ in pairs],
                "chosen_ids": [c[PROMPT:] for c, _ in pairs],
                "rejected_ids": [r[PROMPT:] for _, r in pairs],
            }
        )
        trainer.train_dataset = trainer._precompute_ref_logps(ids, "train", 2)
        if "ref_chosen_logps" not in trainer.train_dataset.column_names:
            sys.exit(f"dpo: precompute did not add reference log-probs: {trainer.train_dataset.column_names}")
        trainer.train()
    return {"seconds": timed(timer.times, warmup, "dpo")}


def length_reward(completions, **kwargs):
    """-min(1, 0.01 * characters): Temper's `length_penalty` reward with target 0, per_unit 0.01, cap 1."""
    return [-min(1.0, 0.01 * len(c)) for c in completions]


def bench_grpo(gguf, steps, warmup, prompts_file):
    model, tok = load(gguf)
    n = warmup + steps
    with open(prompts_file) as f:
        prompts = [json.loads(line)["prompt"] for line in f if line.strip()]
    if len(prompts) < GRPO_PROMPTS:
        sys.exit(f"{prompts_file}: {len(prompts)} prompts, at least {GRPO_PROMPTS} needed")
    data = Dataset.from_dict({"prompt": prompts})
    # TRL builds the beta != 0 reference with `create_model_from_path(<the policy's path>)`: it gets the same model
    # the policy was loaded as (a fresh load of the cached copy; the policy's `_name_or_path` may be the GGUF's folder).
    grpo_module.create_model_from_path = lambda *a, **k: load(gguf)[0]
    timer = StepTimer()
    generate_times, lengths = [], []
    with tempfile.TemporaryDirectory() as out:
        settings = common(out, n, GRPO_PROMPTS * GRPO_GENERATIONS, 1e-6)
        del settings["max_length"]
        args = GRPOConfig(
            **settings,
            num_generations=GRPO_GENERATIONS,
            max_completion_length=GRPO_MAX_NEW,
            temperature=1.0,
            loss_type="dapo",
            beta=0.04,
            epsilon=0.2,
            epsilon_high=0.28,
        )
        trainer = GRPOTrainer(
            model=model, reward_funcs=[length_reward], args=args, train_dataset=data, processing_class=tok,
            callbacks=[timer],
        )
        generate = trainer._generate

        def timed_generate(*a, **k):
            t0 = time.perf_counter()
            result = generate(*a, **k)
            generate_times.append(time.perf_counter() - t0)
            completion_ids = result[1]
            lengths.append(sum(len(c) for c in completion_ids) / len(completion_ids))
            return result

        trainer._generate = timed_generate
        trainer.train()
    if len(generate_times) != len(timer.times):
        sys.exit(f"grpo: {len(generate_times)} generations for {len(timer.times)} steps")
    return {
        "seconds": timed(timer.times, warmup, "grpo"),
        "generate_seconds": generate_times[warmup:],
        "completion_mean_length": lengths[warmup:],
    }


BENCHES = {"sft": "sft_step/4x128", "dpo": "dpo_step/2x2x128", "grpo": f"grpo_step/{GRPO_PROMPTS}x{GRPO_GENERATIONS}x{GRPO_MAX_NEW}"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("gguf")
    p.add_argument("--only", required=True, choices=sorted(BENCHES), help="the bench this process runs")
    p.add_argument("--steps", type=int, default=3, help="timed steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed first steps")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompts", help="GRPO: JSONL file of prompts (`prompt`)")
    a = p.parse_args()
    if a.only == "grpo" and not a.prompts:
        sys.exit("--only grpo needs --prompts FILE")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {
        "bench": BENCHES[a.only],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "threads": torch.get_num_threads(),
        "warmup": a.warmup,
    }
    if a.only == "sft":
        out.update(bench_sft(a.gguf, a.steps, a.warmup))
    elif a.only == "dpo":
        out.update(bench_dpo(a.gguf, a.steps, a.warmup))
    else:
        out.update(bench_grpo(a.gguf, a.steps, a.warmup, a.prompts))
    out["vm_hwm_kib"] = vm_hwm_kib()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
