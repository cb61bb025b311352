import numpy as np
import pytest

from stocksent.scoring.metrics import binary_metrics, reliability, roc_auc, roc_curve


def test_counts_by_hand():
    labels = np.array([1, 1, 1, 0, 0])
    prob = np.array([0.9, 0.6, 0.2, 0.7, 0.1])
    m = binary_metrics(labels, prob, ("bearish", "bullish"))
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["confusion"]["matrix"] == [[1, 1], [1, 2]]
    assert m["per_class"]["bullish"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert m["per_class"]["bearish"]["recall"] == pytest.approx(1 / 2)
    assert m["majority_accuracy"] == pytest.approx(3 / 5) and m["majority_label"] == "bullish"
    assert m["roc_auc"] == pytest.approx(4 / 6)  # 4 of 6 (pos, neg) pairs ranked right


def test_the_headline_f1_is_the_positive_labels():
    labels = np.array([1, 1, 1, 0, 0])
    prob = np.array([0.9, 0.6, 0.2, 0.7, 0.1])  # bullish F1 2/3, bearish F1 1/2
    m = binary_metrics(labels, prob, ("bearish", "bullish"))
    assert m["f1"] == pytest.approx(2 / 3) and m["per_class"]["bearish"]["f1"] == pytest.approx(1 / 2)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    # Whatever the names, the headline F1 is that of code 1, the label named second.
    assert binary_metrics(1 - labels, 1 - prob, ("bullish", "bearish"))["f1"] == pytest.approx(1 / 2)


def test_roc_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300), 1)  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(labels, scores) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_roc_auc_undefined_for_one_class():
    assert np.isnan(roc_auc(np.ones(4), np.random.rand(4)))


def test_roc_curve_area_is_roc_auc():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500) + 0.3 * labels, 1)  # rounded: many ties
    fpr, tpr = roc_curve(labels, scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(labels, scores))


def test_reliability_bins_by_hand():
    labels = np.array([0, 0, 1, 1, 1, 0])
    prob = np.array([0.05, 0.15, 0.12, 0.95, 1.0, 0.91])
    r = reliability(labels, prob)
    assert [(b["low"], b["n"]) for b in r["bins"]] == [(0.0, 1), (0.1, 2), (0.9, 3)]
    assert r["bins"][1]["positive_rate"] == 0.5 and r["bins"][1]["mean_prob"] == pytest.approx(0.135)
    gaps = [1 * 0.05, 2 * abs(0.135 - 0.5), 3 * abs((0.95 + 1.0 + 0.91) / 3 - 2 / 3)]
    assert r["ece"] == pytest.approx(sum(gaps) / 6)


def test_precision_and_recall_each_on_its_own_axis():
    # Confusion (rows true, columns predicted): [[1, 1], [2, 2]]: precision and recall differ for both labels.
    labels = np.array([1, 1, 1, 1, 0, 0])
    prob = np.array([0.9, 0.8, 0.3, 0.2, 0.7, 0.1])
    m = binary_metrics(labels, prob, ("bearish", "bullish"))
    assert m["confusion"]["matrix"] == [[1, 1], [2, 2]]
    assert m["per_class"]["bullish"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 4, "f1": 4 / 7, "support": 4})
    assert m["per_class"]["bearish"] == pytest.approx({"precision": 1 / 3, "recall": 1 / 2, "f1": 2 / 5, "support": 2})
    assert m["f1"] == pytest.approx(4 / 7) and m["macro_f1"] == pytest.approx((4 / 7 + 2 / 5) / 2)


def test_one_half_counts_as_the_positive_label_as_predict_and_the_server_call_it():
    labels = np.array([1, 0, 0, 1])
    prob = np.array([0.5, 0.5 - 1e-9, 0.0, 1.0])
    m = binary_metrics(labels, prob, ("bearish", "bullish"))
    assert m["confusion"]["matrix"] == [[2, 0], [0, 2]] and m["accuracy"] == 1.0
    assert binary_metrics(np.array([0]), np.array([0.5]), ("bearish", "bullish"))["confusion"]["matrix"] == [
        [0, 1], [0, 0]]
