"""The full-ranking next-item protocol: candidates, filtering, batching and leave-one-out targets."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from shopformer.data.sequences import SequenceArrays
from shopformer.evaluate.ranking import (
    evaluate_next_item,
    leave_one_out_targets,
    top_k_items,
)

N_ITEMS = 6
# Padding and unknown get the highest scores on purpose: they must still never be ranked.
FIXED_SCORES = torch.tensor([100.0, 100.0, 5.0, 4.0, 3.0, 2.0])


def fixed_scorer(batch: SequenceArrays) -> torch.Tensor:
    return FIXED_SCORES.repeat(len(batch.lengths), 1)


def seqs(histories) -> SequenceArrays:
    return SequenceArrays.from_lists([list(h) for h in histories])


def test_padding_and_unknown_are_never_candidates():
    result = evaluate_next_item(fixed_scorer, seqs([[4]] * 3), np.array([2, 5, 3]), N_ITEMS, ks=(1, 2))
    # Ranks 1, 4, 2 among the real items 2..5.
    assert result["hr@1"] == pytest.approx(1 / 3)
    assert result["hr@2"] == pytest.approx(2 / 3)
    assert result["mrr@2"] == pytest.approx((1 + 1 / 2) / 3)
    assert result["n_users"] == 3 and result["ties"] == "pessimistic" and result["filter_seen"] is False


def test_filter_seen_removes_history_items_but_keeps_the_target():
    histories = seqs([[2], [3, 2]])
    targets = np.array([3, 3])
    unfiltered = evaluate_next_item(fixed_scorer, histories, targets, N_ITEMS, ks=(1,))
    filtered = evaluate_next_item(fixed_scorer, histories, targets, N_ITEMS, ks=(1,), filter_seen=True)
    assert unfiltered["hr@1"] == 0.0
    # Item 2 is removed for both users; item 3 is in the second history but is its target.
    assert filtered["hr@1"] == 1.0 and filtered["filter_seen"] is True


def test_coverage_counts_distinct_recommended_items():
    result = evaluate_next_item(fixed_scorer, seqs([[2]] * 4), np.array([2, 3, 4, 5]), N_ITEMS, ks=(1, 2, 20))
    assert result["coverage@1"] == pytest.approx(1 / 4)
    assert result["coverage@2"] == pytest.approx(2 / 4)
    assert result["coverage@20"] == 1.0  # k larger than the catalog: every real item is listed


def random_case(n_users=50, n_items=30, seed=0):
    rng = np.random.default_rng(seed)
    histories = seqs([rng.integers(2, n_items, size=rng.integers(0, 6)) for _ in range(n_users)])
    targets = rng.integers(2, n_items, size=n_users)
    table = torch.from_numpy(rng.random((n_items, n_items)).astype(np.float32))

    def scorer(batch: SequenceArrays):  # scores depend on the last item, so rows differ
        ends = batch.offsets[1:]
        last = np.where(batch.lengths > 0, batch.items[np.maximum(ends - 1, 0)] if len(batch.items) else 0, 0)
        return table[torch.from_numpy(np.asarray(last, dtype=np.int64))]

    return histories, targets, n_items, scorer


@pytest.mark.parametrize("filter_seen", [False, True])
def test_results_do_not_depend_on_the_batch_size(filter_seen):
    histories, targets, n_items, scorer = random_case()
    one = evaluate_next_item(scorer, histories, targets, n_items, batch_size=1, filter_seen=filter_seen)
    many = evaluate_next_item(scorer, histories, targets, n_items, batch_size=7, filter_seen=filter_seen)
    assert one == many


def test_scorer_never_sees_more_than_a_batch():
    histories, targets, n_items, scorer = random_case()
    sizes = []
    evaluate_next_item(lambda b: (sizes.append(len(b.lengths)), scorer(b))[1], histories, targets, n_items, batch_size=16)
    assert sizes == [16, 16, 16, 2]


def test_scorer_gets_the_histories_rows_in_order_with_their_event_types_and_times():
    histories = SequenceArrays(np.array([0, 2, 3, 3]), np.array([2, 3, 4]), np.array([2, 3, 2]), np.array([10, 20, 30]))
    seen = []

    def scorer(batch):
        seen.append(batch)
        return torch.zeros((len(batch.lengths), N_ITEMS))

    evaluate_next_item(scorer, histories, np.array([2, 3, 4]), N_ITEMS, batch_size=2)
    assert [b.lengths.tolist() for b in seen] == [[2, 1], [0]]
    assert seen[0].items.tolist() == [2, 3, 4] and seen[0].event_types.tolist() == [2, 3, 2]
    assert seen[0].timestamps.tolist() == [10, 20, 30]


def test_top_k_applies_candidate_masks_and_exclusions_in_place():
    scores = np.array([[-np.inf, -np.inf, 5.0, 4.0, 3.0, 2.0]] * 2)
    allowed = np.array([False, False, True, True, True, False])
    codes, values = top_k_items(scores, 2, exclude=(np.array([1]), np.array([2])), allowed=allowed)
    assert codes.tolist() == [[2, 3], [3, 4]] and values[1].tolist() == [4.0, 3.0]
    assert scores[0, 5] == -np.inf  # the mask was applied to the caller's scores
    per_row = np.array([[True] * 6, [False, False, False, False, True, True]])
    codes, values = top_k_items(np.zeros((2, 6)), 3, allowed=per_row)
    assert set(codes[1, :2].tolist()) == {4, 5} and values[1, 2] == -np.inf  # fewer than k candidates left


def test_wrong_scorer_shape_and_bad_targets_are_errors():
    with pytest.raises(ValueError, match="shape"):
        evaluate_next_item(lambda b: torch.zeros((len(b.lengths), 3)), seqs([[2]]), np.array([2]), N_ITEMS)
    with pytest.raises(ValueError, match="real item"):
        evaluate_next_item(fixed_scorer, seqs([[2]]), np.array([1]), N_ITEMS)
    with pytest.raises(ValueError, match="targets"):
        evaluate_next_item(fixed_scorer, seqs([[2]]), np.array([2, 3]), N_ITEMS)


def test_full_ranking_of_22k_users_over_12k_items_is_fast():
    n_users, n_items = 22_363, 12_103
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 10, size=n_users)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    items = rng.integers(2, n_items, size=offsets[-1])
    targets = rng.integers(2, n_items, size=n_users)
    row = torch.from_numpy(rng.random(n_items).astype(np.float32))
    started = time.perf_counter()
    evaluate_next_item(lambda b: row.repeat(len(b.lengths), 1), SequenceArrays(offsets, items), targets, n_items, filter_seen=True)
    assert time.perf_counter() - started < 10.0


def csr(sequences) -> SequenceArrays:
    return SequenceArrays.from_lists(sequences)


def test_leave_one_out_test_and_valid_targets():
    sequences = csr([[2, 3, 4], [5], [6, 7], [8, 9, 10, 11]])
    histories, targets = leave_one_out_targets(sequences, "test")
    assert histories.offsets.tolist() == [0, 2, 3, 6] and histories.items.tolist() == [2, 3, 6, 8, 9, 10]
    assert targets.tolist() == [4, 7, 11]
    histories, targets = leave_one_out_targets(sequences, "valid")
    assert histories.offsets.tolist() == [0, 1, 3] and histories.items.tolist() == [2, 8, 9]
    assert targets.tolist() == [3, 10]


def test_leave_one_out_skips_unknown_targets():
    sequences = csr([[2, 3, 1], [4, 5, 6]])
    histories, targets = leave_one_out_targets(sequences, "test")
    assert targets.tolist() == [6] and histories.offsets.tolist() == [0, 2]
    with pytest.raises(ValueError):
        leave_one_out_targets(sequences, "train")


def test_integer_and_half_precision_scores_are_accepted():
    histories, targets = seqs([[2]] * 2), np.array([2, 3])
    expected = evaluate_next_item(fixed_scorer, histories, targets, N_ITEMS)
    as_int = evaluate_next_item(lambda b: fixed_scorer(b).long(), histories, targets, N_ITEMS)
    as_half = evaluate_next_item(lambda b: fixed_scorer(b).bfloat16(), histories, targets, N_ITEMS)
    assert as_int == expected and as_half == expected


def test_inconsistent_csr_histories_are_errors():
    with pytest.raises(ValueError, match="offsets"):
        SequenceArrays(np.array([0, 5]), np.array([2, 3]))
