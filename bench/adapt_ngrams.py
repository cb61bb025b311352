"""Adaptation to a new market as `stocksent adapt` does it, and each of its two steps alone:
"part" refits the n-gram part in rounds on the training split and the model's surest guesses for
the market's messages (p >= T or <= 1 - T; adapt.py), "priors" shifts each ticker's messages by
how bullish the market is on it (priors.py), "both" is the command's default. The market's tags
are read only to score: per model, step and threshold, the rounds run, the guesses kept in the
last and how many of the first round's were right, the market's ROC-AUC before and after, and
the training data's test accuracy before and after. With --held-out F, adaptation reads the
market's other messages, and only that share F of them is scored.

    python bench/adapt_ngrams.py runs/ng-plain/seed-1 --data ../shared/data/ood/stocktwits_trending_2020.csv \
        --steps both part priors --held-out 0.5
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from stocksent.classifier import SentimentClassifier
from stocksent.data.corpus import CorpusCache
from stocksent.data.dataset import find_data
from stocksent.evaluation.experiment import adapt_to

STEPS = {"both": (True, True), "part": (True, False), "priors": (False, True)}  # (refit the part, priors)


def adapt(folder: str, data: str, steps: list[str], thresholds: list[float], rounds: int,
          held_out: float = 0.0, corpora: CorpusCache | None = None) -> list[dict]:
    corpora = corpora or CorpusCache()  # the training file and the market's, read once for every step
    base = SentimentClassifier.load(folder)
    market = corpora.load(find_data(data), base.config.data, base.config.preprocess)
    read, scored = _halves(len(market.texts), held_out)
    texts, labels = [market.texts[i] for i in scored], market.labels[scored]
    before = base.evaluate(texts, base.classes_[labels])["roc_auc"]
    guess = base.positive_proba([market.texts[i] for i in read])
    rows = []
    for step, threshold in [(step, t) for step in steps for t in (thresholds if STEPS[step][0] else [None])]:
        clf = SentimentClassifier.load(folder)
        refit, priors = STEPS[step]
        metrics = adapt_to(clf, [market.texts[i] for i in read], threshold=threshold or 0.9,
                           rounds=rounds if refit else 0, priors=priors, log=lambda line: None, corpora=corpora)
        done, after = metrics["adaptation"]["rounds"], clf.evaluate(texts, clf.classes_[labels])
        rows.append({"step": step, "threshold": threshold, "rounds": len(done), "kept": done[-1]["kept"] if done else 0,
                     "right_first": _right(guess, market.labels[read], threshold) if threshold else None,
                     "roc_before": before, "roc_after": after["roc_auc"],
                     "test_before": base.metrics["test"]["accuracy"], "test_after": metrics["test"]["accuracy"]})
    return rows


def _halves(n: int, held_out: float) -> tuple[np.ndarray, np.ndarray]:
    """The market's messages adaptation reads, and those scored: all and all, or with a share
    held out, the rest and that share (drawn with seed 0)."""
    if not held_out:
        return np.arange(n), np.arange(n)
    order = np.random.default_rng(0).permutation(n)
    cut = int(round(n * held_out))
    return np.sort(order[cut:]), np.sort(order[:cut])


def _right(guess: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """How many of the first round's sure guesses were right."""
    sure = (guess >= threshold) | (guess <= 1 - threshold)
    return float(((guess[sure] >= 0.5) == labels[sure]).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", required=True, help="the new market's tagged messages (tags only counted)")
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), default=["both"])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.9])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--held-out", type=float, default=0.0,
                        help="adapt on the market's other messages and score this share of them only")
    args = parser.parse_args(argv)
    columns = ["model", "step", "threshold", "rounds", "sure guesses (last round)", "first round right",
               "market ROC-AUC before", "after", "test accuracy before", "after"]
    print("| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|")
    corpora = CorpusCache()
    for folder in args.models:
        for row in adapt(folder, args.data, args.steps, args.thresholds, args.rounds, args.held_out, corpora):
            right = "" if row["right_first"] is None else f"{row['right_first']:.3f}"
            cells = [folder, row["step"], row["threshold"] or "", row["rounds"], row["kept"], right,
                     *(f"{row[k]:.4f}" for k in ("roc_before", "roc_after", "test_before", "test_after"))]
            print("| " + " | ".join(map(str, cells)) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
