"""What each half of a model with an n-gram part scores: the networks alone, the n-gram part
alone, and their blend (the model as it scores), on the test split of the data it was trained
on, and on a file of other messages with --data (every message of it).

    python bench/blend.py runs/ng-plain/seed-1 runs/ng-plain/seed-2 [--data FILE]

Prints one table row per model directory and part: accuracy and ROC-AUC.
"""
from __future__ import annotations

import argparse
import sys

from stocksent.classifier import SentimentClassifier
from stocksent.evaluation.experiment import split_messages
from stocksent.scoring.ngrams import NgramModel, flat_ids
from stocksent.training.train import scored


def halves(folder: str, data: str | None) -> dict[str, dict]:
    clf = SentimentClassifier.load(folder)
    part = clf.predictor_.part(NgramModel)
    if part is None:
        raise SystemExit(f"{folder}: this model has no n-gram part")
    texts, labels = split_messages(clf, data, "all" if data else "test")
    flat, lengths = flat_ids(clf.encode(texts))
    network = clf.predictor_.network_logits(flat, lengths)  # the model's own scorer, without the parts
    logits = {"networks": network, "n-gram part": part.logits(flat, lengths),
              "blend": part.blend(network, flat, lengths)}
    return {name: scored(z, labels, clf.config.train, clf.labels) for name, z in logits.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", help="score every message of this file instead of the test split")
    args = parser.parse_args(argv)
    print("| model | part | accuracy | ROC-AUC |\n|---|---|---|---|")
    for folder in args.models:
        for name, metrics in halves(folder, args.data).items():
            print(f"| {folder} | {name} | {metrics['accuracy']:.4f} | {metrics['roc_auc']:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
