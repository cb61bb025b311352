"""Time and peak memory of pretraining on what `stocksent train --unlabelled` reads: the training
split's texts (seed N, plain split; tags unread) and the shared untagged posts, once per
objective, each `stocksent pretrain` in a fresh process (bench/rss.py).

    python bench/pretrain_cost.py --seed 1 --objectives next-word word2vec
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rss import run_measured  # noqa: E402
from stocksent import SentimentClassifier  # noqa: E402
from stocksent.data.corpus import load_corpus  # noqa: E402
from stocksent.data.dataset import find_data  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--objectives", nargs="+", default=["next-word", "word2vec"])
    parser.add_argument("--untagged", default=str(Path(__file__).parents[2] / "shared" / "data" / "unlabelled"),
                        help="folder of the untagged posts (CSV)")
    args = parser.parse_args(argv)
    config = SentimentClassifier(seed=args.seed).build_config()
    corpus = load_corpus(find_data(), config.data, config.preprocess)
    train = corpus.split(config.data)["train"]
    untagged = sorted(str(p) for p in Path(args.untagged).glob("*.csv"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        texts = Path(tmp) / "train.txt"  # one message a line, as stocksent pretrain reads plain text
        texts.write_text("".join(" ".join(corpus.texts[i].split()) + "\n" for i in train), encoding="utf-8")
        for objective in args.objectives:
            out = Path(tmp) / objective
            measured = run_measured(["pretrain", "--text", str(texts), *untagged, "--objective", objective,
                                     "--seed", str(args.seed), "--out", str(out)])
            metrics = json.loads((out / "metrics.json").read_text())
            rows.append({"objective": objective, "messages": metrics["messages"], "words": metrics["words"],
                         "epochs": len(json.loads((out / "history.json").read_text())),
                         "pretraining_s": metrics["seconds"], **measured})
    print("| objective | messages | words | epochs | pretraining (s) | command (s) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['objective']} | {r['messages']:,} | {r['words']:,} | {r['epochs']} | {r['pretraining_s']:.0f} "
              f"| {r['seconds']:.0f} | {r['peak_rss_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
