"""Train one epoch of the same model twice in one run: every message padded to 244 tokens, as the
article does, and in length-bucketed batches padded to each batch's longest message.

    python bench/padding.py [--preset default|tutorial] [--limit N] [--threads N] [--json FILE]

Prints a table and the speed-up; --limit trains on the first N training messages only.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from stocksent.config import preset
from stocksent.data.batches import bucket_batches, ordered_batches
from stocksent.data.corpus import load_corpus
from stocksent.data.dataset import find_data
from stocksent.nets.device import bf16_used
from stocksent.nets.model import build_model
from stocksent.training.optim import make_optimizer
from stocksent.training.train import Run, seed_everything, train_one_epoch

ARTICLE_WIDTH = 244  # the article pads every message to the longest message in characters


def time_epoch(run: Run, encoded, labels, batches, pad_to: int | None,
               device: torch.device = torch.device("cpu")) -> dict:
    bf16 = bf16_used(device, run.config.run.bf16)  # as `stocksent train` would run it here
    if device.type == "cuda":  # CUDA's context and cuDNN's plans are made once, not every epoch
        model = build_model(run.config.model).to(device)
        train_one_epoch(model, make_optimizer(model, run.config.train), encoded, labels, batches[:10],
                        run.config.train, pad_to=pad_to, bf16=bf16)
    seed_everything(run.config.data.seed)
    model = build_model(run.config.model).to(device)
    optimizer = make_optimizer(model, run.config.train)
    start = time.perf_counter()  # train_one_epoch ends reading its sums back, so a GPU is done by then
    loss, acc = train_one_epoch(model, optimizer, encoded, labels, batches, run.config.train, pad_to=pad_to,
                                bf16=bf16)
    seconds = time.perf_counter() - start
    widths = [pad_to or max(len(encoded[i]) for i in b) for b in batches]
    return {"seconds": seconds, "messages_per_s": len(labels) / seconds, "batches": len(batches),
            "padded_tokens": int(sum(w * len(b) for w, b in zip(widths, batches))), "loss": loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--limit", type=int, default=0, help="first N training messages only (0: all)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = preset(args.preset)
    run = Run.from_corpus(config, load_corpus(find_data(), config.data, config.preprocess))
    encoded, labels = run.encoded["train"], run.labels["train"]
    if args.limit:
        encoded, labels = encoded[: args.limit], labels[: args.limit]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64)
    size = config.train.batch_size
    results = {
        "padded to 244": time_epoch(run, encoded, labels, ordered_batches(len(encoded), size), ARTICLE_WIDTH),
        "bucketed": time_epoch(run, encoded, labels, bucket_batches(lengths, size, np.random.default_rng(0)), None),
    }
    ratio = results["padded to 244"]["seconds"] / results["bucketed"]["seconds"]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; preset {args.preset}; {len(encoded)} training messages, "
          f"batch {size}, mean length {lengths.mean():.1f} tokens")
    print(f"{'feeding':<15}{'batches':>9}{'padded tokens':>15}{'seconds':>10}{'msgs/s':>10}")
    for name, r in results.items():
        print(f"{name:<15}{r['batches']:>9}{r['padded_tokens']:>15}{r['seconds']:>10.1f}{r['messages_per_s']:>10.0f}")
    print(f"speed-up of bucketing: {ratio:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"preset": args.preset, "messages": len(encoded), "results": results, "ratio": ratio},
                      f, indent=2)


if __name__ == "__main__":
    main()
