"""Binary classification metrics, computed with numpy alone."""
from __future__ import annotations

import numpy as np


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities of the positive label from logits, in float64."""
    return 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64)))


def label_weights(labels: np.ndarray) -> np.ndarray:
    """(2,) each label's weight n / (2 n_label), so that both weigh alike in a sum over these
    messages (scikit-learn's class_weight="balanced"); a label absent gets n / 2."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)
    return len(labels) / (2 * np.maximum(counts, 1))


def binary_metrics(labels: np.ndarray, prob: np.ndarray, names: tuple[str, str]) -> dict:
    """Accuracy, per-class precision / recall / F1, ROC-AUC, confusion matrix, majority baseline."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = (np.asarray(prob) >= 0.5).astype(np.int64)
    confusion = np.zeros((2, 2), dtype=np.int64)  # rows: true label, columns: predicted
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {name: _class_scores(confusion, k) for k, name in enumerate(names)}
    majority = int(np.bincount(labels, minlength=2).argmax())
    return {
        "n": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "f1": per_class[names[1]]["f1"],
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])),
        "roc_auc": roc_auc(labels, prob),
        "per_class": per_class,
        "confusion": {"labels": list(names), "matrix": confusion.tolist()},
        "majority_label": names[majority],
        "majority_accuracy": float((labels == majority).mean()),
    }


def _class_scores(confusion: np.ndarray, k: int) -> dict:
    tp = confusion[k, k]
    precision = tp / confusion[:, k].sum() if confusion[:, k].sum() else 0.0
    recall = tp / confusion[k, :].sum() if confusion[k, :].sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "support": int(confusion[k, :].sum())}


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum statistic, ties given their average rank."""
    labels = np.asarray(labels)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # Average ranks over runs of equal scores.
    starts = np.flatnonzero(np.concatenate([[True], sorted_scores[1:] != sorted_scores[:-1]]))
    ends = np.concatenate([starts[1:], [len(scores)]])
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    labels = np.asarray(labels, dtype=np.int64)
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    ranked_scores, ranked = np.asarray(scores)[order], labels[order]
    ends = np.flatnonzero(np.concatenate([ranked_scores[1:] != ranked_scores[:-1], [True]]))
    tp, fp = np.cumsum(ranked)[ends], np.cumsum(1 - ranked)[ends]
    tpr = np.concatenate([[0.0], tp / max(int(labels.sum()), 1)])
    fpr = np.concatenate([[0.0], fp / max(int((1 - labels).sum()), 1)])
    return fpr, tpr


def reliability(labels: np.ndarray, prob: np.ndarray, bins: int = 10) -> dict:
    """Calibration in equal-width probability bins: mean predicted probability against the
    observed positive rate in each non-empty bin, and the expected calibration error (their
    gap weighted by bin size)."""
    labels, prob = np.asarray(labels, dtype=np.float64), np.asarray(prob, dtype=np.float64)
    which = np.minimum((prob * bins).astype(np.int64), bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            rows.append({"low": b / bins, "high": (b + 1) / bins, "n": int(inside.sum()),
                         "mean_prob": float(prob[inside].mean()), "positive_rate": float(labels[inside].mean())})
    ece = sum(r["n"] * abs(r["mean_prob"] - r["positive_rate"]) for r in rows) / max(len(labels), 1)
    return {"bins": rows, "ece": float(ece)}
