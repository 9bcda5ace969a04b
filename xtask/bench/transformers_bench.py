"""Baseline for `cargo xtask bench --vs transformers`: the same work as Temper's criterion benches, in PyTorch.

Loads the SmolLM2 GGUF with transformers (every tensor dequantized to float32), then measures prefill tokens/s
(batch 1 and 8, 128-token prompts), greedy decode tokens/s (batch 1 and 8, 16-token prompts, 32 new tokens, KV
cache), forward+backward tokens/s (batch 4 x 64 tokens, mean NLL) and samples/s of N = 1, 4, 16 sampled
continuations of one 64-token prompt (16 new tokens each, `generate(num_return_sequences=N)`). Prints one JSON
object.
"""
import json
import os
import sys
import time

import torch
from transformers import AutoModelForCausalLM

PROMPT_LEN = 128
DECODE_PROMPT = 16
DECODE_TOKENS = 32
SAMPLE_PROMPT = 64
SAMPLE_TOKENS = 16


def prompts(batch, length):
    return torch.tensor(
        [[100 + (b * 7919 + t * 104729) % 40000 for t in range(length)] for b in range(batch)], dtype=torch.long
    )


def timed(fn, repeats):
    fn()  # warm-up
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best.append(time.perf_counter() - t0)
    best.sort()
    return best[len(best) // 2]  # median


def main():
    gguf = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1)))
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(gguf), gguf_file=os.path.basename(gguf), torch_dtype=torch.float32
    )
    model.eval()
    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    with torch.no_grad():
        for b in (1, 8):
            ids = prompts(b, PROMPT_LEN)
            s = timed(lambda: model(ids), repeats)
            out[f"prefill_tokens/{b}"] = b * PROMPT_LEN / s
        for b in (1, 8):
            ids = prompts(b, DECODE_PROMPT)
            mask = torch.ones_like(ids)

            def gen():
                model.generate(
                    ids, attention_mask=mask, max_new_tokens=DECODE_TOKENS, min_new_tokens=DECODE_TOKENS,
                    do_sample=False, pad_token_id=2,
                )

            s = timed(gen, repeats)
            out[f"decode_tokens/{b}"] = b * DECODE_TOKENS / s
        ids = prompts(1, SAMPLE_PROMPT)
        mask = torch.ones_like(ids)
        for n in (1, 4, 16):

            def sample(n=n):
                model.generate(
                    ids, attention_mask=mask, max_new_tokens=SAMPLE_TOKENS, min_new_tokens=SAMPLE_TOKENS,
                    do_sample=True, top_k=0, num_return_sequences=n, pad_token_id=2,
                )

            s = timed(sample, repeats)
            out[f"samples/{n}"] = n / s
    model.train()
    ids = prompts(4, 64)

    def step():
        logits = model(ids).logits
        lp = torch.log_softmax(logits.float(), -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        (-lp.mean()).backward()
        model.zero_grad(set_to_none=True)

    s = timed(step, repeats)
    out["forward_backward_tokens/4x64"] = 4 * 64 / s
    print(json.dumps(out))


if __name__ == "__main__":
    main()
