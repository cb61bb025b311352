"""Time two versions of stocksent side by side in one run: end-to-end scoring of every message
of the data set through SentimentClassifier.predict_proba (and sets of 64 and 1,024 of its
messages, one call each), and one training epoch of the default
preset through `stocksent train --epochs 1` (the epoch's seconds from history.json, training and
validation, and the command's wall time). The versions alternate, the first of each round
changing from round to round, so that neither a slow spell nor going first favours one.

    git worktree add ../before <commit>
    python bench/before_after.py --before ../before/src --after src --model models/default

Each version runs in a child process with its own src folder first on PYTHONPATH.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "StockTwits_SPY_Sentiment_2017.gz"
# Run inside each child, through the public API alone (so that any two versions run it): load the
# model, score every message of the data set (after a warm-up), print seconds.
SCORE = """
import csv, gzip, json, sys, time
from stocksent import SentimentClassifier
clf = SentimentClassifier.load(sys.argv[1])
with gzip.open(sys.argv[3], "rt", encoding="utf-8", newline="") as f:
    texts = [row["message"] for row in csv.DictReader(f)]
clf.predict_proba(texts[:2000])
best = []
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    prob = clf.predict_proba(texts)
    best.append(time.perf_counter() - start)
positive = prob[:, 1] if prob.ndim == 2 else prob  # (n, 2) since the scikit-learn API, (n,) before
small = {}
for size in (64, 1024):  # sets of a few messages, as a service or a notebook scores them
    sets = [texts[i:i + size] for i in range(0, 16384, size)]
    passes = []
    for _ in range(int(sys.argv[2])):
        start = time.perf_counter()
        for chunk in sets:
            clf.predict_proba(chunk)
        passes.append(time.perf_counter() - start)
    small[f"us_per_message_in_sets_of_{size}"] = min(passes) / 16384 * 1e6
print(json.dumps({"messages": len(texts), "seconds": min(best), "mean_prob": float(positive.mean()), **small}))
"""


def run_child(src: Path, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, check=True)


def time_scoring(src: Path, model: Path, repeats: int) -> dict:
    return json.loads(run_child(src, ["-c", SCORE, str(model), str(repeats), str(DATA)]).stdout)


def time_epoch(src: Path) -> dict:
    import time

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_child(src, ["-m", "stocksent.cli", "train", "--epochs", "1", "--out", f"{tmp}/m", "--force"])
        wall = time.perf_counter() - start
        history = json.loads(Path(f"{tmp}/m/history.json").read_text())
    return {"epoch_seconds": history[0]["seconds"], "command_seconds": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="src folder of the earlier version")
    parser.add_argument("--after", type=Path, required=True, help="src folder of the later version")
    parser.add_argument("--model", type=Path, required=True, help="a saved model both versions can load")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two versions")
    parser.add_argument("--repeats", type=int, default=3, help="scoring passes per child (best is kept)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--no-epoch", dest="epoch", action="store_false", help="time the scoring alone")
    args = parser.parse_args()
    rows = []
    for round_ in range(1, args.rounds + 1):
        order = (("before", args.before), ("after", args.after))
        for name, src in order if round_ % 2 else order[::-1]:
            score = time_scoring(src, args.model, args.repeats)
            epoch = time_epoch(src) if args.epoch else {"epoch_seconds": float("nan"), "command_seconds": float("nan")}
            rows.append({"round": round_, "version": name, **score, **epoch})
            print(f"round {round_} {name:<6} scoring {score['messages']:,} msgs {score['seconds']:6.2f} s "
                  f"({score['messages'] / score['seconds']:,.0f} msg/s), sets of 64 / 1,024: "
                  f"{score['us_per_message_in_sets_of_64']:.1f} / {score['us_per_message_in_sets_of_1024']:.1f} "
                  f"us a message  epoch {epoch['epoch_seconds']:6.1f} s  "
                  f"train --epochs 1 {epoch['command_seconds']:6.1f} s", flush=True)
    for name in ("before", "after"):
        mine = [r for r in rows if r["version"] == name]
        print(f"{name:<6} best scoring {min(r['seconds'] for r in mine):.2f} s, "
              f"best epoch {min(r['epoch_seconds'] for r in mine):.1f} s, "
              f"mean probability {mine[0]['mean_prob']:.6f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
