"""Generates the reference values the Rust tests compare against (run once; the outputs are committed).

BM25: rank_bm25 (BM25Okapi, and BM25Okapi with Lucene's idf) on fixed pre-tokenized documents.
Metrics: pytrec_eval on a fixed run with ties and graded qrels.

    pip install rank_bm25 pytrec-eval-terrier
    python crates/rag/tests/make_fixtures.py
"""
import json
import math
import os

import pytrec_eval
from rank_bm25 import BM25Okapi

HERE = os.path.dirname(os.path.abspath(__file__))

DOCS = [
    "the quick brown fox jumps over the lazy dog".split(),
    "a quick brown dog outpaces a quick fox".split(),
    "debian is a free operating system".split(),
    "the debian project packages free software for the debian system".split(),
    "apt installs and removes packages".split(),
    "dpkg is the low level package tool under apt".split(),
    "the fox".split(),
]
QUERIES = [
    "quick fox".split(),
    "debian free system".split(),
    "apt packages packages".split(),
    "the".split(),
    "unknown words only".split(),
]


class LuceneIdf(BM25Okapi):
    """BM25Okapi's scoring with Lucene's idf: ln(1 + (N - n + 0.5) / (n + 0.5))."""

    def _calc_idf(self, nd):
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


def bm25_cases():
    cases = []
    for k1, b in [(1.5, 0.75), (1.2, 0.75), (0.9, 0.4), (2.0, 1.0), (1.2, 0.0)]:
        for idf, cls, extra in [("okapi", BM25Okapi, {"epsilon": 0.25}), ("lucene", LuceneIdf, {})]:
            model = cls(DOCS, k1=k1, b=b, **extra)
            cases.append({
                "k1": k1,
                "b": b,
                "idf": idf,
                "scores": [list(map(float, model.get_scores(q))) for q in QUERIES],
            })
    return {"docs": DOCS, "queries": QUERIES, "cases": cases}


def metrics_cases():
    qrels = {
        "q1": {"d1": 2, "d2": 1, "d3": 0, "d9": 3},
        "q2": {"d5": 1},
        "q3": {"d1": 1, "d2": 1, "d3": 2},
        "q4": {"d8": 1},
    }
    run = {
        "q1": {"d1": 0.9, "d2": 0.5, "d3": 0.9, "d4": 0.1, "d5": 0.5},
        "q2": {"d1": 3.0, "d2": 2.0, "d3": 1.0, "d4": 1.0, "d5": 1.0, "d6": 0.5},
        "q3": {"d1": 1.0, "d2": 1.0, "d3": 1.0},
        "q4": {"d1": 1.0},
    }
    measures = {"recall_1", "recall_5", "recall_10", "P_1", "P_5", "recip_rank", "ndcg_cut_3", "ndcg_cut_10"}
    values = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    return {"qrels": qrels, "run": run, "values": values}


def main():
    with open(os.path.join(HERE, "fixtures", "bm25_rank_bm25.json"), "w") as f:
        json.dump(bm25_cases(), f, indent=1)
    with open(os.path.join(HERE, "fixtures", "metrics_pytrec_eval.json"), "w") as f:
        json.dump(metrics_cases(), f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
