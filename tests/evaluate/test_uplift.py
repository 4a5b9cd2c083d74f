"""Uplift metrics against hand-computed curves, and the perfect and reversed rankings."""

from __future__ import annotations

import numpy as np
import pytest

from shopformer.evaluate.uplift import qini_area, qini_coefficient, qini_curve, uplift_at_k, uplift_curve

# Six users ranked by score: treated T / control C with response 1 / 0.
OUTCOME = np.array([1, 0, 1, 0, 0, 1.0])
TREATED = np.array([1, 0, 1, 1, 0, 0.0])
SCORE = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


def test_the_qini_curve_by_hand():
    k, q = qini_curve(OUTCOME, TREATED, SCORE)
    # after 1: Y_t=1, N_c=0 -> 1; 2: 1 - 0*1/1 = 1; 3: 2 - 0 = 2; 4: 2; 5: 2 - 0*3/2 = 2; 6: 2 - 1*3/3 = 1
    assert k.tolist() == [0, 1, 2, 3, 4, 5, 6] and np.allclose(q, [0, 1, 1, 2, 2, 2, 1])
    area = np.trapezoid(q, k) - 1 * 6 / 2
    assert qini_area(OUTCOME, TREATED, SCORE) == pytest.approx(area)


def test_the_uplift_curve_by_hand():
    k, u = uplift_curve(OUTCOME, TREATED, SCORE)
    # after 2: (1/1 - 0/1) * 2 = 2; after 6: (2/3 - 1/3) * 6 = 2
    assert u[2] == pytest.approx(2.0) and u[-1] == pytest.approx(2.0)


def test_tied_scores_enter_together():
    k, _ = qini_curve(OUTCOME, TREATED, np.array([1, 1, 0.5, 0.5, 0.2, 0.2]))
    assert k.tolist() == [0, 2, 4, 6]


def test_the_perfect_ranking_scores_one_and_the_reversed_one_below_zero():
    perfect = OUTCOME * TREATED - OUTCOME * (1 - TREATED)
    assert qini_coefficient(OUTCOME, TREATED, perfect) == pytest.approx(1.0)
    assert qini_coefficient(OUTCOME, TREATED, -perfect) < 0


def test_uplift_at_k_and_its_errors():
    assert uplift_at_k(OUTCOME, TREATED, SCORE, k=4 / 6) == pytest.approx(2 / 3 - 0)
    with pytest.raises(ValueError, match="no treated or no control"):
        uplift_at_k(OUTCOME, TREATED, SCORE, k=1 / 6)
    with pytest.raises(ValueError, match="one length"):
        qini_curve(OUTCOME, TREATED[:3], SCORE)
