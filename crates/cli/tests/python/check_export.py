"""Loads what `temper export` wrote with the tools people use and prints what they see, as one JSON object.

usage: check_export.py HF_DIR GGUF_FILE|- MESSAGES_JSON MAX_NEW_TOKENS

- transformers on HF_DIR: the tokenizer's chat template, the rendering of MESSAGES with
  apply_chat_template(add_generation_prompt=True), its ids, and the greedy continuation;
- transformers' GGUF reader (gguf_file=) on GGUF_FILE: the same rendering and greedy continuation.
"""

import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.set_num_threads(2)


def greedy(model, ids, max_new_tokens, eos):
    out = model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    return out[0][len(ids):].tolist()


def side(tok, model, messages, max_new_tokens):
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return {
        "chat_template": tok.chat_template,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "text": text,
        "input_ids": ids,
        "output_ids": greedy(model, ids, max_new_tokens, tok.eos_token_id),
    }


def main():
    hf_dir, gguf_file, messages, max_new = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
    report = {}
    tok = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    report["hf"] = side(tok, model, messages, max_new)
    report["hf"]["generation_config_eos"] = model.generation_config.eos_token_id
    if gguf_file != "-":
        folder, name = os.path.dirname(gguf_file), os.path.basename(gguf_file)
        gtok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        gmodel = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        report["gguf"] = side(gtok, gmodel, messages, max_new)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
