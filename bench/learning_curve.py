"""Draw a model's per-epoch validation accuracy beside the article's reported figures.

    python bench/learning_curve.py models/tutorial docs/learning_curve.png

Needs matplotlib (pip install -e '.[plot]').
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt  # noqa: E402

# Validation accuracy the article reports after epochs 1, 10 and 50, and its test accuracy.
ARTICLE_VAL = {1: 0.578, 10: 0.659, 50: 0.72}
ARTICLE_TEST = 0.717


def main(model_dir: str, out: str) -> None:
    history = json.loads((Path(model_dir) / "history.json").read_text())
    metrics = json.loads((Path(model_dir) / "metrics.json").read_text())
    epochs = [row["epoch"] for row in history]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.plot(epochs, [r["train_accuracy"] for r in history], label="stocksent train accuracy",
            color="tab:blue", alpha=0.5)
    ax.plot(epochs, [r["val_accuracy"] for r in history], label="stocksent validation accuracy", color="tab:blue")
    ax.plot(list(ARTICLE_VAL), list(ARTICLE_VAL.values()), "o--", color="tab:orange",
            label="article validation accuracy (reported)")
    ax.axhline(ARTICLE_TEST, color="tab:orange", linestyle=":", label=f"article test accuracy {ARTICLE_TEST}")
    ax.axhline(metrics["test"]["accuracy"], color="tab:blue", linestyle=":",
               label=f"stocksent test accuracy {metrics['test']['accuracy']:.3f}")
    ax.set(xlabel="epoch", ylabel="accuracy", title=f"{Path(model_dir).name} preset: learning curve")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
