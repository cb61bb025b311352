"""Binary classification metrics, computed with numpy alone."""
from __future__ import annotations

import numpy as np


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
