"""Where a training step and a scoring call spend their time: the torch profiler's top operators.

    python bench/hotspots.py [--steps N] [--preset default] [--threads N]

Trains N batches of the preset's model on the bundled data (timed as it trains, then profiled on
one thread, as the profiler sees one thread's operators), then scores the 9,697 raw test
messages (normalisation included) the way a loaded model scores them (on a CPU: the folded
network; the profiled call on one thread, as each of the scoring pool's threads runs), and prints
the operators that take most of each, with the share of wall time spent outside torch operators
(Python, batching, tokenising).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from stocksent.classifier import SentimentClassifier
from stocksent.config import preset
from stocksent.data.batches import bucket_batches
from stocksent.data.corpus import load_corpus
from stocksent.data.dataset import find_data
from stocksent.nets.device import bf16_used
from stocksent.nets.model import build_model
from stocksent.scoring.ngrams import fit_ngrams
from stocksent.training.optim import make_optimizer
from stocksent.training.train import Run, train_one_epoch


def report(name: str, prof: profile, wall: float, rows: int = 12) -> None:
    events = prof.key_averages()
    top = sorted((e for e in events if e.key.startswith("aten::") or e.key.startswith("Optimizer")),
                 key=lambda e: e.self_cpu_time_total, reverse=True)
    in_ops = sum(e.self_cpu_time_total for e in events) / 1e6
    print(f"\n{name}: {wall:.2f} s wall, {in_ops:.2f} s inside profiled operators")
    print(f"{'operator':<44}{'self s':>9}{'share':>8}{'calls':>9}")
    for e in top[:rows]:
        print(f"{e.key[:43]:<44}{e.self_cpu_time_total / 1e6:>9.3f}"
              f"{e.self_cpu_time_total / 1e6 / wall:>8.1%}{e.count:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = preset(args.preset)
    corpus = load_corpus(find_data(), config.data, config.preprocess)
    run = Run.from_corpus(config, corpus)
    torch.manual_seed(0)
    model = build_model(run.config.model)
    optimizer = make_optimizer(model, run.config.train)
    lengths = np.fromiter(map(len, run.encoded["train"]), dtype=np.int64)
    batches = bucket_batches(lengths, run.config.train.batch_size, np.random.default_rng(0))[: args.steps]
    args_ = (run.encoded["train"], run.labels["train"])
    bf16 = bf16_used(torch.device("cpu"), run.config.run.bf16)  # the precision `stocksent train` uses here
    train_one_epoch(model, optimizer, *args_, batches[:20], run.config.train, bf16=bf16)  # warm-up
    start, threads = time.perf_counter(), torch.get_num_threads()
    train_one_epoch(model, optimizer, *args_, batches, run.config.train, bf16=bf16)
    trained = time.perf_counter() - start
    # The profiler sees only the calling thread's operators, and an ensemble trains its members on
    # threads of their own: the profiled steps run on one thread, every operator in view.
    torch.set_num_threads(1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        train_one_epoch(model, optimizer, *args_, batches, run.config.train, bf16=bf16)
        wall = time.perf_counter() - start
    torch.set_num_threads(threads)
    report(f"training{' in bfloat16' if bf16 else ''}, {len(batches)} steps of batch {run.config.train.batch_size} on "
           f"one thread ({trained:.2f} s wall as trained, on {threads})", prof, wall)
    ngrams = fit_ngrams(run.encoded["train"], run.labels["train"], run.config.model, run.config.train) \
        if run.config.model.ngrams else None  # its n-gram part, unprofiled: scoring blends it in
    clf = SentimentClassifier.from_model(model, run.vocab, run.config, ngrams=ngrams)  # as `load` sets one up
    texts = [corpus.texts[i] for i in corpus.split(config.data)["test"]]
    clf.predict_proba(texts[:3000])  # warm-up
    start, threads = time.perf_counter(), torch.get_num_threads()
    clf.predict_proba(texts)
    pooled = time.perf_counter() - start
    # The profiler sees only the calling thread's operators, so the profiled call runs on one
    # thread: the operators each of the pool's threads runs, all in view.
    torch.set_num_threads(1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        clf.predict_proba(texts)
        wall = time.perf_counter() - start
    torch.set_num_threads(threads)
    report(f"scoring {len(texts)} raw messages on one thread ({pooled:.2f} s wall on {threads})", prof, wall)


if __name__ == "__main__":
    main()
