"""Milliseconds per call of the folded LSTM and of the network's fused call on sets of a few
messages: what scoring every set through the fold (one path, the same logit in any set) costs a
service's single-message request.

    python bench/small_sets.py MODEL_DIR [--threads 2] [--calls 200]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from stocksent.scoring.predictor import Predictor
from stocksent.scoring.scorer import NetworkScorer

TEXT = "$SPY going to rip higher tomorrow, loading calls at 2.50 http://x.co"


def per_call_ms(work, calls: int) -> float:
    for _ in range(5):
        work()
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    predictor = Predictor.load(args.model)
    network = NetworkScorer(predictor.network.merged() or predictor.network)
    print(f"{'messages':>8} {'fold ms':>8} {'network ms':>10}")
    for n in (1, 4, 15, 64):
        flat, lengths = predictor.encode_flat([TEXT] * n)
        fold = per_call_ms(lambda: predictor.scorer.logits(flat, lengths), args.calls)
        net = per_call_ms(lambda: network.logits(flat, lengths), args.calls)
        print(f"{n:>8} {fold:>8.2f} {net:>10.2f}")
        assert np.allclose(predictor.scorer.logits(flat, lengths), network.logits(flat, lengths), atol=1e-5)


if __name__ == "__main__":
    main()
