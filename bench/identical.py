"""Check that two versions of stocksent train and score the same, bit for bit.

    git worktree add ../before <commit>
    python bench/identical.py --src ../before/src --out runs/identical/before   # once per version
    python bench/identical.py --src src --out runs/identical/after
    python bench/identical.py --compare runs/identical/before runs/identical/after

Each version, in a child process with its src folder first on PYTHONPATH, makes three models:
`stocksent train --seed 1` on the whole data set, `SentimentClassifier.fit` on the first
FIT_MESSAGES messages, and `stocksent adapt` of the first onto the other-markets file; and it
scores every message of the data set with each (predict_proba); --score-only scores those already
made. --compare prints, per model, whether model.safetensors is byte-identical and whether the
probabilities are equal.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
OOD = DATA / "ood" / "stocktwits_trending_2020.csv"
FIT_MESSAGES = 20_000
MODELS = ("train", "fit", "adapt")

# Run inside each child, through the public API alone (so that any two versions run it): the fit
# model (unless it is there), then every model's probabilities for every message of the data set.
SCORE = """
import csv, gzip, sys
from pathlib import Path
import numpy as np
from stocksent import SentimentClassifier
out, data, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
with gzip.open(data, "rt", encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f))
texts = [r["message"] for r in rows]
if not (out / "fit").exists():
    SentimentClassifier(seed=1, epochs=2).fit(texts[:n], [r["sentiment"] for r in rows[:n]]).save(out / "fit")
for name in ("train", "fit", "adapt"):
    np.save(out / f"{name}.npy", SentimentClassifier.load(out / name).predict_proba(texts))
"""


def make(src: Path, out: Path, score_only: bool = False) -> None:
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    cli = [sys.executable, "-m", "stocksent.cli"]
    out.mkdir(parents=True, exist_ok=True)
    steps = [cli + ["train", "--seed", "1", "--out", str(out / "train"), "--force"],
             cli + ["adapt", str(out / "train"), "--text", str(OOD), "--out", str(out / "adapt"), "--force"]]
    steps = [] if score_only else steps
    steps.append([sys.executable, "-c", SCORE, str(out), str(DATA / "StockTwits_SPY_Sentiment_2017.gz"),
                  str(FIT_MESSAGES)])
    for step in steps:
        subprocess.run(step, env=env, check=True, stdout=subprocess.DEVNULL)


def compare(before: Path, after: Path) -> bool:
    same = True
    print(f"{'model':<8}{'model.safetensors':>20}{'predict_proba':>16}{'messages':>10}")
    for name in MODELS:
        weights = filecmp.cmp(before / name / "model.safetensors", after / name / "model.safetensors", shallow=False)
        old, new = np.load(before / f"{name}.npy"), np.load(after / f"{name}.npy")
        proba = old.shape == new.shape and bool(np.array_equal(old, new))
        same &= weights and proba
        print(f"{name:<8}{'identical' if weights else 'DIFFERENT':>20}{'equal' if proba else 'DIFFERENT':>16}"
              f"{len(new):>10}")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, help="src folder of the version to run")
    parser.add_argument("--out", type=Path, help="where that version's models and probabilities go")
    parser.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--score-only", action="store_true", help="score the models already in --out again")
    args = parser.parse_args()
    if args.compare:
        sys.exit(0 if compare(*args.compare) else 1)
    if not (args.src and args.out):
        parser.error("give --src and --out, or --compare BEFORE AFTER")
    make(args.src, args.out, args.score_only)


if __name__ == "__main__":
    main()
