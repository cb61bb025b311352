"""How long `stocksent train` of the `default` preset takes against the baselines a user would fit
instead, side by side in one run on one split, and how near its epochs come to their arithmetic.

    git worktree add ../before <commit>
    python bench/train_time.py --before ../before/src [--seed 0] [--json FILE]

In order, each in a fresh process, nothing else running:
- `stocksent train` of the `default` preset, this version and (with --before) the one in that src
  folder: the command's wall time and its phases, read off the times its log lines arrive
  (start-up and data; word vectors; the epochs; the n-gram part; scoring and saving);
- `stocksent baseline --model M` for TF-IDF + LR, NBSVM and fastText: wall time, the fit's seconds
  (fitting, the search of C or of fastText's settings on validation, scoring) and test accuracy;
  and one fastText fit at the settings its search chose, on every core (start-up and fit);
- `stocksent train --epochs N` for N = 1, 2, ...: the first model the preset makes ahead of every
  baseline on test accuracy, and its wall time.
The ratios are the figures: the default's wall time over TF-IDF + LR's fit, and the first model
ahead of every baseline's wall time over fastText's (its whole command, and one fit).

The epoch's floor: the multiply-adds the LSTM layers of both members do in an epoch (forward on
every padded word of the bucketed batches, backward twice that, and validation's forward) over
this machine's matrix throughput (torch's matmul of 2,048 x 2,048 matrices, best of five), against
the epochs' seconds in history.json (training and validation). A version that trains in bfloat16
(its data line says so) is also set against the floor at bfloat16's throughput.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import runlog
from stocksent.config import preset
from stocksent.data.batches import bucket_batches
from stocksent.data.corpus import load_corpus
from stocksent.data.dataset import find_data
from stocksent.training.train import Run

ROOT = Path(__file__).resolve().parents[1]
# Each phase of a training run ends when its log line arrives: the first of the pretraining's,
# the data line after the word vectors, the last epoch's, the n-gram part's; then the command ends.
PHASES = ("start-up and data", "word vectors", "epochs", "n-gram part", "scoring and saving")


def run_logged(src: Path, args: list[str]) -> tuple[float, list[tuple[float, str]]]:
    """Run `stocksent ARGS` with `src` first on the path: its wall seconds and each stderr line
    with the second it arrived."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "stocksent.cli", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    lines = [(time.perf_counter() - started, line.rstrip("\n")) for line in child.stderr]
    out = child.stdout.read()
    if child.wait() != 0:
        raise SystemExit(f"stocksent {' '.join(args)} failed: {lines[-1][1] if lines else out}")
    return time.perf_counter() - started, lines + [(time.perf_counter() - started, out)]


def phases(wall: float, lines: list[tuple[float, str]]) -> dict[str, float]:
    """Seconds of each of PHASES, from the seconds its log line arrived."""
    def first(test) -> float:
        return next(second for second, line in lines if test(line))

    pretraining = first(lambda line: line.startswith("pretraining ("))
    data = first(lambda line: " messages (" in line and "; train " in line)  # the data set's line, after them
    epochs = [second for second, line in lines if line.startswith("epoch") and "val_acc" in line]
    ngrams = first(lambda line: line.startswith("n-gram part"))
    ends = [pretraining, data, epochs[-1], ngrams, wall]
    return {name: round(end - start, 1) for name, start, end in zip(PHASES, [0.0, *ends], ends)}


def train(src: Path, out: Path, seed: int, *extra: str) -> dict:
    wall, lines = run_logged(src, ["train", "--seed", str(seed), "--out", str(out), "--force", *extra])
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())
    return {"wall": round(wall, 1), "phases": phases(wall, lines), "test_accuracy": metrics["test"]["accuracy"],
            "bf16": metrics.get("precision") == "bfloat16",  # before, there was float32 alone
            "epochs_run": len(history), "best_epoch": metrics["best_epoch"],
            "epoch_seconds": [row["seconds"] for row in history]}


def baseline(model: str, seed: int) -> dict:
    wall, lines = run_logged(ROOT / "src", ["baseline", "--model", model, "--seed", str(seed), "--json"])
    result = json.loads(lines[-1][1])
    (name,) = [key for key in result if key not in ("split", "majority")]
    settings = {key: result[name][key] for key in ("wordNgrams", "epoch", "lr") if key in result[name]}
    return {"wall": round(wall, 1), "fit": result[name]["seconds"], "test_accuracy": result[name]["test"]["accuracy"],
            "settings": settings}


# One fastText fit at the settings its grid chose, on every core, in a fresh process: the command a
# user who knows them runs. Prints its start-up (import and reading the split) and fit seconds.
FASTTEXT_ONCE = """
import json, os, sys, tempfile, time
started = time.perf_counter()
import fasttext
from stocksent.config import preset
from stocksent.data.corpus import load_corpus
from stocksent.data.dataset import find_data
config = preset("default").override("data", seed=int(sys.argv[1]))
corpus = load_corpus(find_data(), config.data, config.preprocess)
index = corpus.split(config.data)["train"]
with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    f.writelines(f"__label__{int(corpus.labels[i])} {' '.join(corpus.tokens[i])}\\n" for i in index)
ready = time.perf_counter()
fasttext.train_supervised(input=f.name, dim=50, thread=os.cpu_count(), verbose=0, **json.loads(sys.argv[2]))
done = time.perf_counter()
os.unlink(f.name)
print(json.dumps({"start_up": ready - started, "fit": done - ready}))
"""


def fasttext_once(seed: int, settings: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", FASTTEXT_ONCE, str(seed), json.dumps(settings)], env=env,
                          capture_output=True, text=True, check=True)
    return {**json.loads(done.stdout), "wall": round(time.perf_counter() - started, 1)}


def matmul_flops(threads: int, dtype: torch.dtype = torch.float32) -> float:
    """torch's best matrix throughput here in `dtype`, in FLOP/s."""
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(5))
    return 2 * 2048 ** 3 / best


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def epoch_flops(seed: int) -> tuple[float, float]:
    """The LSTM layers' FLOPs in one epoch of the default preset on the seed's split: all of
    them, and validation's share (which runs in float32 whatever the training steps run in)."""
    config = preset("default").override("data", seed=seed)
    run = Run.from_corpus(config, load_corpus(find_data(), config.data, config.preprocess))
    lengths = run.train_lengths
    batches = bucket_batches(lengths, config.train.batch_size, np.random.default_rng(seed))
    padded = sum(len(index) * int(lengths[index].max()) for index in batches)
    val_words = sum(map(len, run.encoded["val"]))
    sizes, model = [config.model.embedding_dim, *config.model.lstm_sizes], config.model
    per_word = sum(2 * 4 * h * (i + h) for i, h in zip(sizes, sizes[1:])) * model.members  # forward
    return per_word * (3 * padded + val_words), per_word * val_words


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="the src folder of the version to compare with")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results: dict = {"seed": args.seed, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        versions = {"after": ROOT / "src", **({"before": args.before.resolve()} if args.before else {})}
        for name, src in versions.items():
            results[name] = train(src, Path(tmp) / name, args.seed)
            print(f"{name}: {results[name]}", file=sys.stderr)
        results["baselines"] = {model: baseline(model, args.seed) for model in ("tfidf", "nbsvm", "fasttext")}
        best = max(b["test_accuracy"] for b in results["baselines"].values())
        results["first_models"] = []
        for epochs in range(1, preset("default").train.epochs + 1):  # fewer epochs: the schedule's shorter run
            results["first_models"].append(train(ROOT / "src", Path(tmp) / f"first-{epochs}", args.seed,
                                                 "--epochs", str(epochs)))  # a fresh folder: nothing reused
            if results["first_models"][-1]["test_accuracy"] > best:
                break
    results["fasttext_once"] = fasttext_once(args.seed, results["baselines"]["fasttext"]["settings"])
    results["matmul_gflops"] = matmul_flops(results["threads"]) / 1e9
    if results["after"]["bf16"]:  # its floor at the precision it multiplies in
        results["matmul_gflops_bf16"] = matmul_flops(results["threads"], torch.bfloat16) / 1e9
    results["epoch_tflop"], results["val_tflop"] = (flops / 1e12 for flops in epoch_flops(args.seed))
    table(results)
    if args.json:
        runlog.save(results, args.json)
    return results


def floor_seconds(results: dict, bf16: bool = False) -> float:
    """The epoch's arithmetic floor: its FLOPs over the matrix throughput of the precision each
    part runs in (validation always float32)."""
    total, val = results["epoch_tflop"] * 1e12, results["val_tflop"] * 1e12
    if not bf16:
        return total / (results["matmul_gflops"] * 1e9)
    return (total - val) / (results["matmul_gflops_bf16"] * 1e9) + val / (results["matmul_gflops"] * 1e9)


def table(results: dict) -> None:
    base = results["baselines"]
    tfidf, fasttext = base["tfidf"]["fit"], base["fasttext"]["wall"]
    best_baseline = max(b["test_accuracy"] for b in base.values())
    print(f"{'measure':<46}{'seconds':>9}{'ratio':>9}  note")
    for name in ("before", "after"):
        if name not in results:
            continue
        run = results[name]
        print(f"{'train, default (' + name + ')':<46}{run['wall']:>9.1f}{run['wall'] / tfidf:>8.1f}x  "
              f"over TF-IDF + LR's fit; test acc {run['test_accuracy']:.4f}, {run['epochs_run']} epochs "
              f"(best {run['best_epoch']})")
        for phase, seconds in run["phases"].items():
            print(f"{'  ' + phase:<46}{seconds:>9.1f}")
        epoch = float(np.median(run["epoch_seconds"]))
        floor = floor_seconds(results)
        print(f"{'  an epoch (median), against its float32 floor':<46}{epoch:>9.1f}"
              f"{epoch / floor:>8.2f}x  floor {floor:.1f} s = "
              f"{results['epoch_tflop']:.2f} TFLOP / {results['matmul_gflops']:.0f} GFLOP/s")
        if run.get("bf16") and "matmul_gflops_bf16" in results:
            floor = floor_seconds(results, bf16=True)
            print(f"{'  an epoch (median), against its bfloat16 floor':<46}{epoch:>9.1f}{epoch / floor:>8.2f}x  "
                  f"floor {floor:.1f} s: training's {results['epoch_tflop'] - results['val_tflop']:.2f} TFLOP / "
                  f"{results['matmul_gflops_bf16']:.0f} GFLOP/s, validation's at float32's")
    once = results["fasttext_once"]
    for first in results["first_models"]:
        ahead = "ahead of" if first["test_accuracy"] > best_baseline else "not ahead of"
        print(f"{'train --epochs ' + str(first['epochs_run']) + ' (a first model)':<46}{first['wall']:>9.1f}"
              f"{first['wall'] / fasttext:>8.2f}x  over fastText's command, {first['wall'] / once['wall']:.1f}x over "
              f"one fastText fit; test acc {first['test_accuracy']:.4f}, {ahead} every baseline (best "
              f"{best_baseline:.4f})")
    print(f"{'fastText, one fit at its chosen settings':<46}{once['wall']:>9.1f}{'':>9}  start-up "
          f"{once['start_up']:.1f} s + fit {once['fit']:.1f} s on {os.cpu_count()} threads")
    for model, b in base.items():
        print(f"{'baseline ' + model + ', fit (command)':<46}{b['fit']:>9.1f}{'':>9}  command {b['wall']:.1f} s; "
              f"test acc {b['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
