"""Loads a Temper LoRA run's adapter with PEFT on its base model and compares logits with the merged model.

usage: check_peft.py BASE_DIR MERGED_DIR ADAPTER_DIR IDS_JSON

Prints {"peft_vs_merged": max |Δlogit|, "base_vs_merged": max |Δlogit|} as JSON.
"""

import json
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

torch.set_num_threads(2)


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def main():
    base_dir, merged_dir, adapter_dir, ids = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    base_logits = logits(base, ids)
    peft = PeftModel.from_pretrained(base, adapter_dir)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    merged_logits = logits(merged, ids)
    print(json.dumps({
        "peft_vs_merged": (logits(peft, ids) - merged_logits).abs().max().item(),
        "base_vs_merged": (base_logits - merged_logits).abs().max().item(),
    }))


if __name__ == "__main__":
    main()
