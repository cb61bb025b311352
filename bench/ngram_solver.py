"""The n-gram part's solver: stocksent's L-BFGS (scoring/lbfgs.py) against scipy's L-BFGS-B, which
the part used before, on the same loss: the `default` preset's part on a seed's training split.

    python bench/ngram_solver.py [--seed 0] [--rounds 3] [--data FILE]

Prints, for each solver and iteration count, its seconds (median of the rounds, alternated) and
how far its loss ends above the lowest any of them reaches; then the whole fit (features and
solver) as `train` runs it.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from scipy import optimize

from stocksent.config import preset
from stocksent.data.corpus import load_corpus
from stocksent.data.dataset import find_data
from stocksent.scoring import ngrams
from stocksent.scoring.lbfgs import minimise
from stocksent.training.train import Run

SETTINGS = [("L-BFGS-B (scipy), before", 50), ("L-BFGS (stocksent)", 50), ("L-BFGS (stocksent), now", 100),
            ("L-BFGS (stocksent)", 300)]


def scipy_lbfgsb(function, x0: np.ndarray, iterations: int) -> np.ndarray:
    return optimize.minimize(function, x0, jac=True, method="L-BFGS-B",
                             options={"maxiter": iterations, "maxcor": 20}).x


def captured_loss(run: Run):
    """The loss and starting point the part's fit hands its solver."""
    seen = {}

    def keep(function, x0, iterations):
        seen["function"], seen["x0"] = function, x0
        return minimise(function, x0, 1)

    ngrams.minimise, original = keep, ngrams.minimise
    try:
        ngrams.fit_ngrams(run.encoded["train"], run.labels["train"], run.config.model, run.config.train)
    finally:
        ngrams.minimise = original
    return seen["function"], seen["x0"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", help="a data file other than the bundled one")
    args = parser.parse_args()
    config = preset("default").override("data", seed=args.seed)
    run = Run.from_corpus(config, load_corpus(find_data(args.data), config.data, config.preprocess))
    function, x0 = captured_loss(run)
    seconds: dict[int, list[float]] = {i: [] for i in range(len(SETTINGS))}
    losses = {}
    for _ in range(args.rounds):
        for i, (name, iterations) in enumerate(SETTINGS):
            solve = scipy_lbfgsb if name.startswith("L-BFGS-B") else minimise
            started = time.perf_counter()
            found = solve(function, x0, iterations)
            seconds[i].append(time.perf_counter() - started)
            if i not in losses:  # the same every round: each solver is deterministic
                losses[i] = function(found)[0]
    whole = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        ngrams.fit_ngrams(run.encoded["train"], run.labels["train"], run.config.model, run.config.train)
        whole.append(time.perf_counter() - started)
    lowest = min(losses.values())
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; seed {args.seed}'s training split: "
          f"{len(run.labels['train'])} messages, {len(x0) - 1} n-gram weights; median of {args.rounds} rounds")
    print(f"{'solver':<28}{'iterations':>11}{'seconds':>9}  loss above the lowest (relative)")
    for i, (name, iterations) in enumerate(SETTINGS):
        print(f"{name:<28}{iterations:>11}{statistics.median(seconds[i]):>9.2f}  "
              f"{(losses[i] - lowest) / lowest:.1e}")
    print(f"{'the whole fit, as train runs it':<39}{statistics.median(whole):>9.2f}  "
          f"({ngrams.ITERATIONS} iterations)")


if __name__ == "__main__":
    main()
