"""Baseline for `cargo xtask bench --vs trl`: one optimizer step of TRL's SFTTrainer and DPOTrainer on SmolLM2.

The same work as Temper's criterion bench `crates/train/benches/steps.rs`, on the same token ids:
- the SmolLM2 GGUF loaded with transformers, every tensor dequantized to float32;
- SFT: 4 sequences x 128 tokens, a pre-tokenized language-modelling data set (loss on every target token);
- DPO: 2 pairs (4 sequences) x 128 tokens (prompt 64 + completion 64), sigmoid loss, beta = 0.1, reference
  log-probs precomputed before training (`precompute_ref_log_probs=True`, computed by TRL's own
  `_precompute_ref_logps`);
- f32 (`bf16=False`), no gradient checkpointing (TRL's configs default to it; Temper does not recompute
  activations), AdamW with the HF defaults, global-norm clip 1.0, torch threads = 2 (`--threads`).

A step is timed by a `TrainerCallback` from `on_step_begin` to `on_step_end` inside `Trainer.train()`: TRL's
`training_step` (forward, loss, backward), gradient clipping, `optimizer.step()`, the scheduler and `zero_grad`.
The first `--warmup` steps are dropped; the median of the next `--steps` is reported. Prints one JSON object
(tokens/s per benchmark, the step times, the versions) as the last line of stdout.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer  # noqa: E402

LEN = 128
PROMPT = 64


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


def median_after(times, warmup, name):
    measured = times[warmup:]
    if not measured:
        sys.exit(f"{name}: no step was timed after {warmup} warm-up steps ({len(times)} in all)")
    return statistics.median(measured), measured


def bench_sft(gguf, steps, warmup):
    model, tok = load(gguf)
    n = warmup + steps
    data = Dataset.from_dict({"input_ids": [row(i % 4, LEN) for i in range(4 * n)]})
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(**common(out, n, 4, 2e-5))
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok, callbacks=[timer])
        trainer.train()
    return median_after(timer.times, warmup, "sft")


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
    return median_after(timer.times, warmup, "dpo")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("gguf")
    p.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "threads": torch.get_num_threads(),
        "steps": a.steps,
        "warmup": a.warmup,
    }
    tokens = 4 * LEN  # both benches: 4 sequences of 128 tokens per step
    s, times = bench_sft(a.gguf, a.steps, a.warmup)
    out["sft_step/4x128"] = tokens / s
    out["sft_step/4x128/seconds"] = times
    s, times = bench_dpo(a.gguf, a.steps, a.warmup)
    out["dpo_step/2x2x128"] = tokens / s
    out["dpo_step/2x2x128/seconds"] = times
    print(json.dumps(out))


if __name__ == "__main__":
    main()
