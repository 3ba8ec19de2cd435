"""Statistics of the clinical evaluation, checked against known values and against sklearn."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from ctdistill.assess.compare import mcnemar_exact, paired_gain, quantization_impact
from ctdistill.assess.metrics import bootstrap_ci, calibration_bins, clinical_metrics, macro_f1
from ctdistill.core.stats import balanced_accuracy, binary_auc


def _random_predictions(n, k=4, seed=0, skill=2.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += skill
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def test_fast_auc_and_f1_equal_sklearn_including_ties():
    y, proba = _random_predictions(300)
    proba = np.round(proba, 1)  # many ties
    for c in range(4):
        assert binary_auc(y == c, proba[:, c]) == pytest.approx(roc_auc_score(y == c, proba[:, c]), abs=1e-12)
    yp = proba.argmax(1)
    yp[yp == 3] = 0  # a class never predicted
    assert macro_f1(y, yp, 4) == pytest.approx(f1_score(y, yp, labels=range(4), average="macro", zero_division=0))
    assert np.isnan(binary_auc(np.ones(5, bool), np.arange(5.0)))
    names = np.array(["a", "b", "c", "d"])  # string labels, a class predicted but never true
    assert balanced_accuracy(names[y], names[yp]) == pytest.approx(balanced_accuracy_score(names[y], names[yp]))
    assert balanced_accuracy(names[y[y != 2]], names[yp[y != 2]]) == pytest.approx(
        balanced_accuracy_score(names[y[y != 2]], names[yp[y != 2]]))


def test_ece_worked_example():
    # Bins of width 0.25. Confidences 0.9 (right), 0.8 (wrong) -> bin (0.75, 1]: acc 0.5, conf 0.85;
    # 0.6 (right) -> bin (0.5, 0.75]: acc 1, conf 0.6. ECE = 2/3 * 0.35 + 1/3 * 0.4 = 0.36667.
    y = np.array([0, 1, 0])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])
    bins = calibration_bins(y, proba, n_bins=4)
    assert bins["ece"] == pytest.approx(0.366667, abs=1e-5)
    assert bins["count"] == [0, 0, 1, 2]
    assert bins["accuracy"][3] == pytest.approx(0.5) and bins["confidence"][3] == pytest.approx(0.85)
    perfect = calibration_bins(np.array([0, 0]), np.array([[1.0, 0.0], [1.0, 0.0]]), 10)
    assert perfect["ece"] == 0


def test_mcnemar_exact_hand_checked_table():
    # Discordant pairs b = 8 (A right, B wrong), c = 2. Exact two-sided p = 2 * P(X <= 2 | n = 10, 1/2)
    # = 2 * (1 + 10 + 45) / 1024 = 0.109375.
    y = np.zeros(20, int)
    a = np.array([0] * 8 + [1] * 2 + [0] * 5 + [1] * 5)
    b = np.array([1] * 8 + [0] * 2 + [0] * 5 + [1] * 5)
    result = mcnemar_exact(y, a, b)
    assert (result["a_only_correct"], result["b_only_correct"]) == (8, 2)
    assert result["p_value"] == pytest.approx(0.109375)
    assert mcnemar_exact(y, a, a)["p_value"] == 1.0


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_more_data():
    widths = []
    for n in (100, 1600):
        y, proba = _random_predictions(n, seed=1)
        m = clinical_metrics(y, proba, list("abcd"), n_resamples=500, seed=0)["overall"]
        for name in ("accuracy", "f1", "auc"):
            assert m[f"{name}_lo"] <= m[name] <= m[f"{name}_hi"]
        widths.append(m["accuracy_hi"] - m["accuracy_lo"])
    assert widths[1] < widths[0] / 2.5  # width ~ 1/sqrt(n): 16x the data, about a quarter


def test_bootstrap_is_seeded_and_bca_is_available():
    y, proba = _random_predictions(120, seed=2)
    stat = lambda i: np.array([np.mean(y[i] == proba[i].argmax(1))])  # noqa: E731
    assert bootstrap_ci(stat, 120, 200, seed=5) == bootstrap_ci(stat, 120, 200, seed=5)
    low, high = bootstrap_ci(stat, 120, 200, method="BCa", seed=5)
    assert low[0] < np.mean(y == proba.argmax(1)) < high[0]


def test_clinical_metrics_per_class_sensitivity_and_specificity():
    y = np.array([0, 0, 1, 1, 1, 2])
    proba = np.eye(3)[[0, 1, 1, 1, 0, 2]]
    result = clinical_metrics(y, proba, ["a", "b", "c"], n_resamples=0)
    per = {row["class"]: row for row in result["per_class"]}
    assert per["a"]["sensitivity"] == pytest.approx(0.5) and per["a"]["specificity"] == pytest.approx(3 / 4)
    assert per["b"]["sensitivity"] == pytest.approx(2 / 3) and per["b"]["specificity"] == pytest.approx(2 / 3)
    assert per["c"]["support"] == 1 and per["c"]["sensitivity"] == 1.0
    assert result["overall"]["balanced_accuracy"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert "accuracy_lo" not in result["overall"]


def test_quantization_impact_counts_flips_drift_and_sensitivity_change():
    y = np.array([0, 0, 1, 1])
    float_p = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    quant_p = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])  # one class-0 image flips to 1
    impact = quantization_impact(y, float_p, quant_p, ["a", "b"])
    assert impact["flip_rate"] == 0.25 and impact["accuracy_change"] == -0.25
    assert impact["prob_drift"] == pytest.approx(0.4 / 8)
    assert impact["sensitivity_change_a"] == -0.5 and impact["sensitivity_change_b"] == 0.0
    assert impact["float_only_correct"] == 1 and impact["mcnemar_p"] == 1.0
    assert not impact["collapsed"]
    collapsed = quantization_impact(y, float_p, np.tile([0.4, 0.6], (4, 1)), ["a", "b"])
    assert collapsed["collapsed"] and collapsed["sensitivity_change_a"] == -1.0


def test_paired_gain_of_a_model_against_itself_is_exactly_zero():
    y, proba = _random_predictions(80)
    gain = paired_gain(y, proba, proba, 4, n_resamples=200)
    assert gain["accuracy_gain"] == 0 and gain["accuracy_gain_lo"] == 0 and gain["accuracy_gain_hi"] == 0
    better = np.eye(4)[y]
    gain = paired_gain(y, better, proba, 4, n_resamples=200)
    assert gain["accuracy_gain_lo"] > 0 and gain["f1_gain"] > 0
