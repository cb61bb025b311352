"""Adaptation to a new market as `stocksent adapt` does it (adapt.py): the n-gram part refitted,
in rounds, on the training split and the model's surest guesses for the market's messages
(p >= T or <= 1 - T), the networks unchanged. The market's tags are read only to score: per
model and threshold, the rounds run, the guesses kept in the last and how many of those were
right, the market's ROC-AUC before and after, and the training data's test accuracy before and after.

    python bench/adapt_ngrams.py runs/ng-plain/seed-1 --data ../shared/data/ood/stocktwits_trending_2020.csv \\
        --thresholds 0.9 0.8
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from stocksent.classifier import SentimentClassifier
from stocksent.corpus import load_corpus
from stocksent.data import find_data
from stocksent.experiment import adapt_to


def adapt(folder: str, data: str, thresholds: list[float], rounds: int) -> list[dict]:
    base = SentimentClassifier.load(folder)
    market = load_corpus(find_data(data), base.config.data, base.config.preprocess)
    before = base.evaluate(market.texts, base.classes_[market.labels])["roc_auc"]
    rows = []
    for threshold in thresholds:
        clf = SentimentClassifier.load(folder)
        guess = clf.positive_proba(market.texts)
        metrics = adapt_to(clf, market.texts, threshold=threshold, rounds=rounds, log=lambda line: None)
        done, after = metrics["adaptation"]["rounds"], clf.evaluate(market.texts, clf.classes_[market.labels])
        rows.append({"threshold": threshold, "rounds": len(done), "kept": done[-1]["kept"],
                     "right_first": _right(guess, market.labels, threshold),
                     "roc_before": before, "roc_after": after["roc_auc"],
                     "test_before": base.metrics["test"]["accuracy"], "test_after": metrics["test"]["accuracy"]})
    return rows


def _right(guess: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """How many of the first round's sure guesses were right."""
    sure = (guess >= threshold) | (guess <= 1 - threshold)
    return float(((guess[sure] >= 0.5) == labels[sure]).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", required=True, help="the new market's tagged messages (tags only counted)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.9])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print("| model | threshold | rounds | sure guesses (last round) | first round right | market ROC-AUC before | "
          "after | test accuracy before | after |\n|---|---|---|---|---|---|---|---|---|")
    for folder in args.models:
        for row in adapt(folder, args.data, args.thresholds, args.rounds):
            print(f"| {folder} | {row['threshold']} | {row['rounds']} | {row['kept']} | {row['right_first']:.3f} | "
                  f"{row['roc_before']:.4f} | {row['roc_after']:.4f} | {row['test_before']:.4f} | "
                  f"{row['test_after']:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
