"""stocksent from Python, as in a notebook: the data set as a DataFrame, the split `stocksent
train` makes, fit, score, save.

    python docs/examples/notebook.py                     # the full data set, the default preset
    python docs/examples/notebook.py --compare models/default   # and check it against a CLI run
    python docs/examples/notebook.py --cross-validate 3000      # scikit-learn's cross_val_score

With --compare, the weights must equal those of `stocksent train` on the same data and seed.
"""
import argparse
import time

import pandas as pd
import torch
from safetensors.torch import load_file

from stocksent import SentimentClassifier, split_texts
from stocksent.data.dataset import find_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="data file (default: found as stocksent finds it)")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--compare", metavar="MODEL_DIR", help="a model `stocksent train` wrote on the same data")
    parser.add_argument("--save", metavar="DIR", help="save the fitted model here")
    parser.add_argument("--cross-validate", type=int, metavar="N",
                        help="instead: cross_val_score of one-epoch models on the first N messages, cv=3")
    args = parser.parse_args()

    # keep_default_na: an empty message stays "", as stocksent reads it, not NaN.
    df = pd.read_csv(args.data or find_data(), keep_default_na=False)
    if args.cross_validate:
        return cross_validate(df.head(args.cross_validate))
    clf = SentimentClassifier(**({"epochs": args.epochs} if args.epochs else {}))
    split = split_texts(df.message.tolist(), clf.build_config())
    train, val, test = (df.iloc[split[name]] for name in ("train", "val", "test"))

    started = time.perf_counter()
    clf.fit(train.message, train.sentiment, validation=(val.message, val.sentiment))
    seconds = time.perf_counter() - started
    accuracy = clf.score(test.message, test.sentiment)
    print(f"fit on {len(train):,} messages in {seconds:.1f} s; test accuracy {accuracy:.4f}")
    print(clf.predict(["$SPY to the moon 🚀", "puts printing, this is going to crash"]))
    if args.save:
        print(f"saved to {clf.save(args.save)}")
    if args.compare:
        saved, state = load_file(f"{args.compare}/model.safetensors"), clf.state_dict()
        same = sorted(saved) == sorted(state) and all(torch.equal(saved[k], state[k]) for k in saved)
        cli = SentimentClassifier.load(args.compare)
        print(f"weights identical to {args.compare}: {same}; its test accuracy {cli.metrics['test']['accuracy']:.4f}")
        if not same:
            raise SystemExit(1)


def cross_validate(df: pd.DataFrame) -> None:
    from sklearn.model_selection import cross_val_score

    started = time.perf_counter()
    scores = cross_val_score(SentimentClassifier(epochs=1), df.message, df.sentiment, cv=3)
    print(f"cross_val_score on {len(df):,} messages, cv=3, one epoch each: {' '.join(f'{s:.4f}' for s in scores)} "
          f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
