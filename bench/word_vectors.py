"""Which word vectors the `default` preset should pretrain: gensim's skip-gram (what it uses),
fastText's unsupervised skip-gram with subwords, and the skip-gram stocksent had in PyTorch
(with --before, the src folder of a version that has it), each on every seed's training split,
then the `default` recipe trained from each.

    python bench/word_vectors.py --seeds 1 2 3 [--before ../before/src] [--threads 2] [--json FILE]

For each seed and way: the seconds the vectors take (one process, --threads threads, nothing else
running) and the test accuracy of the `default` trained from them (`train --init VECTORS`).
fastText reads the training split's own tokens (no word is the unknown word to it; the unknown
word's vector is the mean of those of the words the vocabulary leaves out) and gives every word
of the vocabulary its vector from the word and its character 3-6-grams.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

import runlog
from stocksent.config import Config, preset
from stocksent.data.corpus import load_corpus
from stocksent.data.dataset import find_data
from stocksent.nets.lm import BODY
from stocksent.training.pretrain import _Text, pretrain_settings, pretrain_tokens, save_pretrained
from stocksent.training.runs import train_file
from stocksent.training.train import Progress

FASTTEXT = {"epoch": 5, "lr": 0.05, "minn": 3, "maxn": 6}  # the settings measured
# Run inside a child with the other version's src first on the path: its own word2vec pretraining.
BEFORE = """
import json, pathlib, sys, time
from stocksent.config import preset
from stocksent.training.pretrain import pretrain_settings, pretrain_tokens
config = preset("default").override("data", seed=int(sys.argv[1]))
tokens = json.load(open(sys.argv[2]))
started = time.perf_counter()
pretrain_tokens(tokens, config.model, config.preprocess, pretrain_settings(config), pathlib.Path(sys.argv[3]),
                log=lambda line: None)
print(time.perf_counter() - started)
"""


def gensim_vectors(config: Config, tokens: list[list[str]], out: Path) -> float:
    started = time.perf_counter()
    pretrain_tokens(tokens, config.model, config.preprocess, pretrain_settings(config), out, log=lambda line: None)
    return time.perf_counter() - started


def fasttext_vectors(config: Config, tokens: list[list[str]], out: Path, threads: int) -> float:
    import fasttext

    started = time.perf_counter()
    settings = pretrain_settings(config)
    data = _Text.prepare(tokens, config.model, config.preprocess, settings)
    usable = [t for t in tokens if len(t) >= 2]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.writelines(" ".join(t) + "\n" for t in usable)
    try:
        model = fasttext.train_unsupervised(handle.name, model="skipgram", dim=config.model.embedding_dim, ws=2, neg=5,
                                            minCount=1, thread=threads, t=1.0, verbose=0, **FASTTEXT)
    finally:
        os.unlink(handle.name)
    table = np.stack([model.get_word_vector(word) for word in data.vocab.itos]).astype(np.float32)
    counts = Counter(word for message in usable for word in message)
    rare = [word for word, count in counts.items() if count < config.preprocess.min_freq]
    table[1] = np.mean([model.get_word_vector(word) for word in rare], axis=0) if rare else table[1]
    table[0] = 0.0
    progress = Progress()
    progress.record({}, float("inf"), time.perf_counter() - started)  # one pass of ours: no held-out loss
    save_pretrained(out, data, {BODY + "embedding.weight": torch.from_numpy(table)}, progress, settings)
    return time.perf_counter() - started


def before_vectors(src: Path, seed: int, tokens: list[list[str]], out: Path, tmp: Path) -> float:
    (tmp / "tokens.json").write_text(json.dumps(tokens))
    done = subprocess.run([sys.executable, "-c", BEFORE, str(seed), str(tmp / "tokens.json"), str(out)],
                          env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--ways", nargs="+", default=["gensim", "fasttext", "before"])
    parser.add_argument("--before", type=Path, help="src folder of a version with the PyTorch skip-gram")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ways = [way for way in args.ways if way != "before" or args.before]
    results: dict = {way: [] for way in ways}
    for seed in args.seeds:
        config = preset("default").override("data", seed=seed).override("run", threads=args.threads)
        corpus = load_corpus(find_data(), config.data, config.preprocess)
        tokens = corpus.parts(config.data, ("train",))["train"][0]
        for way in ways:
            with tempfile.TemporaryDirectory() as tmp:
                vectors = Path(tmp) / "vectors"
                seconds = {"gensim": lambda: gensim_vectors(config, tokens, vectors),
                           "fasttext": lambda: fasttext_vectors(config, tokens, vectors, args.threads),
                           "before": lambda: before_vectors(args.before, seed, tokens, vectors, Path(tmp))}[way]()
                metrics = train_file(config.override("run", init=str(vectors)), Path(tmp) / "model",
                                     log=lambda line: None)
            row = {"seed": seed, "vector_seconds": round(seconds, 1), "test_accuracy": metrics["test"]["accuracy"],
                   "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"]}
            results[way].append(row)
            print(f"{way} {row}", file=sys.stderr, flush=True)
    table(results)
    if args.json:
        runlog.save(results, args.json)
    return results


def table(results: dict) -> None:
    print(f"{'word vectors':<12}{'seconds':>16}{'test accuracy, mean +- std':>30}  per seed")
    for way, rows in results.items():
        acc, seconds = [r["test_accuracy"] for r in rows], [r["vector_seconds"] for r in rows]
        print(f"{way:<12}{min(seconds):>7.1f}-{max(seconds):<8.1f}{np.mean(acc):>20.4f} +- {np.std(acc, ddof=1):.4f}  "
              + " / ".join(f"{a:.4f}" for a in acc))


if __name__ == "__main__":
    main()
