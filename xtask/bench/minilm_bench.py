"""The sentence-transformers side of the MiniLM encoding bench (`crates/rag/benches/minilm.rs` drives it).

    python minilm_bench.py MODEL_DIR TEXTS_JSON BATCH THREADS

Loads all-MiniLM-L6-v2 from the local folder MODEL_DIR (no hub: HF_HUB_OFFLINE=1), reads a JSON object
`{"name": [texts...], ...}`, warms up, prints one JSON line `{"ready": ..., versions}`, then for every line `NAME`
read on stdin encodes that list once with `model.encode(texts, batch_size=BATCH)` and prints
`{"name": NAME, "seconds": s}`. Exits at end of input. The Rust side alternates these runs with its own, so both
sides see the same machine load.
"""
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch  # noqa: E402
import sentence_transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

model_dir, texts_path, batch, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
sets = json.load(open(texts_path))
model = SentenceTransformer(model_dir, device="cpu")
model.eval()
for texts in sets.values():
    model.encode(texts[:batch], batch_size=batch)
print(json.dumps({"ready": True, "torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__,
                  "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    name = line.strip()
    if not name:
        continue
    texts = sets[name]
    t = time.perf_counter()
    with torch.inference_mode():
        model.encode(texts, batch_size=batch)
    print(json.dumps({"name": name, "seconds": time.perf_counter() - t}), flush=True)
