"""Calibration: fitted on validation predictions, it fixes miscalibrated probabilities and round-trips as JSON."""

from __future__ import annotations

import numpy as np
import pytest

from shopformer.errors import ConfigError, DataError
from shopformer.evaluate.binary import ece, roc_auc
from shopformer.evaluate.calibration import Calibrator, fit_calibrator, load_calibrator


def _overconfident(n: int, seed: int):
    rng = np.random.default_rng(seed)
    true = rng.beta(1, 4, n)
    labels = (rng.random(n) < true).astype(int)
    logit = np.log(true / (1 - true))
    return 1 / (1 + np.exp(-(3 * logit + 1))), labels  # too sharp and shifted


@pytest.mark.parametrize("method", ["platt", "isotonic", "auto"])
def test_binary_calibration_reduces_ece(method):
    valid_p, valid_y = _overconfident(4000, 0)
    test_p, test_y = _overconfident(4000, 1)
    calibrator = fit_calibrator(valid_p, valid_y, method=method)
    calibrated = calibrator.transform(test_p)
    assert ece(test_y, test_p) > 0.1 and ece(test_y, calibrated) < 0.03
    if calibrator.method_ == "platt":
        assert roc_auc(test_y, calibrated) == pytest.approx(roc_auc(test_y, test_p))


def test_temperature_scaling_of_multiclass_probabilities():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(3000, 4)) * 2
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in true])
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)
    calibrator = fit_calibrator(sharp, labels, n_classes=4)
    assert calibrator.method_ == "temperature" and calibrator.params_["temperature"] == pytest.approx(3, rel=0.15)
    assert np.allclose(calibrator.transform(sharp).sum(axis=1), 1)


def test_round_trip_through_json(tmp_path):
    valid_p, valid_y = _overconfident(1000, 3)
    for method in ("platt", "isotonic"):
        calibrator = fit_calibrator(valid_p, valid_y, method=method)
        loaded = load_calibrator(calibrator.save(tmp_path / method))
        assert np.array_equal(loaded.transform(valid_p), calibrator.transform(valid_p))


def test_bad_use_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown calibration"):
        Calibrator("beta")
    with pytest.raises(ConfigError, match="binary"):
        Calibrator("isotonic").fit(np.full((4, 3), 1 / 3), np.array([0, 1, 2, 0]))
    with pytest.raises(DataError, match="2-class"):
        fit_calibrator(np.full((4, 3), 1 / 3), np.array([0, 1, 2, 0]))
    with pytest.raises(DataError, match="calibration.json"):
        load_calibrator(tmp_path)
