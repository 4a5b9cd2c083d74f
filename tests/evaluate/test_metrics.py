"""Ranking metrics against cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopformer.evaluate.metrics import (
    exclude_candidates,
    item_coverage,
    ranking_metrics,
    target_ranks,
)


def test_rank_counts_higher_scores():
    scores = np.array([[0.1, 0.5, 0.3, 0.9]])
    assert target_ranks(scores, np.array([2])).tolist() == [3]  # 0.5 and 0.9 are above 0.3
    assert target_ranks(scores, np.array([3])).tolist() == [1]


def test_all_equal_scores_rank_the_target_last():
    scores = np.zeros((3, 5), dtype=np.float32)
    assert target_ranks(scores, np.array([0, 2, 4])).tolist() == [5, 5, 5]


def test_ties_are_broken_against_the_target():
    scores = np.array([[0.2, 0.5, 0.5, 0.5, 0.1]])
    # Nothing is higher, two other items tie with the target: it sits behind both of them.
    assert target_ranks(scores, np.array([1])).tolist() == [3]


def test_minus_infinity_target_ties_with_every_excluded_item():
    scores = np.array([[-np.inf, -np.inf, 1.0, -np.inf]])
    assert target_ranks(scores, np.array([3])).tolist() == [4]


def test_torch_and_numpy_inputs_agree():
    scores = np.random.default_rng(0).random((4, 7)).astype(np.float32)
    targets = np.array([0, 3, 6, 2])
    expected = target_ranks(scores, targets)
    assert target_ranks(torch.from_numpy(scores), torch.from_numpy(targets)).tolist() == expected.tolist()


def test_excluded_items_drop_out_of_the_ranking():
    scores = np.array([[0.9, 0.8, 0.7, 0.6]])
    mask = np.array([[True, True, False, False]])
    assert target_ranks(scores, np.array([3]), mask).tolist() == [2]


def test_exclusion_never_removes_the_target():
    scores = np.array([[0.9, 0.8, 0.7, 0.6]])
    mask = np.array([[True, False, False, True]])  # the target (3) is marked too, e.g. a repeat buy
    assert target_ranks(scores, np.array([3]), mask).tolist() == [3]


def test_exclusion_leaves_the_input_untouched():
    scores = np.array([[0.9, 0.8]])
    target_ranks(scores, np.array([1]), np.array([[True, False]]))
    assert scores.tolist() == [[0.9, 0.8]]


def test_exclude_candidates_works_in_place_and_keeps_targets():
    scores = np.ones((2, 3))
    exclude_candidates(scores, np.array([0, 0, 1]), np.array([1, 2, 0]), targets=np.array([2, 1]))
    assert scores.tolist() == [[1, -np.inf, 1], [-np.inf, 1, 1]]


def test_nan_scores_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(np.array([[0.1, np.nan]]), np.array([0]))


def test_bad_targets_are_rejected():
    with pytest.raises(ValueError):
        target_ranks(np.zeros((1, 3)), np.array([3]))
    with pytest.raises(ValueError):
        target_ranks(np.zeros((2, 3)), np.array([0]))


def test_ranking_metrics_by_hand():
    ranks = np.array([1, 2, 5, 6, 11, 20, 21])
    m = ranking_metrics(ranks)
    # @5: ranks 1, 2, 5 hit. 1/log2(3) = 0.6309298, 1/log2(6) = 0.3868528.
    assert m["hr@5"] == pytest.approx(3 / 7)
    assert m["recall@5"] == m["hr@5"]
    assert m["ndcg@5"] == pytest.approx((1 + 0.6309298 + 0.3868528) / 7, abs=1e-7)
    assert m["mrr@5"] == pytest.approx((1 + 1 / 2 + 1 / 5) / 7)
    # @10 adds rank 6: 1/log2(7) = 0.3562072.
    assert m["hr@10"] == pytest.approx(4 / 7)
    assert m["ndcg@10"] == pytest.approx((1 + 0.6309298 + 0.3868528 + 0.3562072) / 7, abs=1e-7)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 6) / 7)
    # @20 adds ranks 11 and 20 (a rank equal to k counts), not 21.
    assert m["hr@20"] == pytest.approx(6 / 7)
    assert m["mrr@20"] == pytest.approx((1 + 1 / 2 + 1 / 5 + 1 / 6 + 1 / 11 + 1 / 20) / 7)


def test_k_boundary():
    m = ranking_metrics([10, 11], ks=(10,))
    assert m["hr@10"] == 0.5
    assert m["ndcg@10"] == pytest.approx(0.5 / np.log2(11))
    assert m["mrr@10"] == pytest.approx(0.05)


def test_perfect_and_hopeless_rankings():
    assert ranking_metrics([1, 1])["ndcg@5"] == 1.0
    assert ranking_metrics([1, 1])["mrr@20"] == 1.0
    assert all(value == 0.0 for value in ranking_metrics([1000]).values())


def test_ranking_metrics_rejects_empty_and_zero_ranks():
    with pytest.raises(ValueError):
        ranking_metrics([])
    with pytest.raises(ValueError):
        ranking_metrics([0, 1])


def test_item_coverage():
    assert item_coverage(np.array([[2, 3], [3, 4]]), catalog_size=10) == pytest.approx(0.3)
    assert item_coverage(np.zeros((0, 5), dtype=np.int64), catalog_size=10) == 0.0
    with pytest.raises(ValueError):
        item_coverage(np.array([[2]]), catalog_size=0)
