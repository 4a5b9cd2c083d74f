"""The transition prior: exact pairs, weight chosen on validation targets, growth for new items."""

from __future__ import annotations

import numpy as np
import torch

from shopformer.data.sequences import SequenceArrays
from shopformer.models import prior as prior_module
from shopformer.models.prior import WEIGHT_GRID, TransitionPrior

N_ITEMS = 20  # codes 2..19 are items: more than 10, so a uniform score is a miss at 10


def _uniform(histories: SequenceArrays) -> torch.Tensor:
    scores = torch.zeros(len(histories.lengths), N_ITEMS)
    scores[:, :2] = -torch.inf
    return torch.log_softmax(scores, 1)


def test_pairs_seen_in_training_get_the_highest_prior():
    train = SequenceArrays.from_lists([[2, 3, 4], [2, 3, 5], [6, 7]])
    prior = TransitionPrior.fit(train, N_ITEMS)
    log_p = prior.log_probabilities(SequenceArrays.from_lists([[5, 2], [6]]))
    assert log_p[0].argmax() == 3 and log_p[1].argmax() == 7
    assert torch.isinf(log_p[:, :2]).all()  # padding and unknown are never candidates


def test_tune_picks_a_weight_only_when_it_helps_on_validation():
    train = SequenceArrays.from_lists([[2, 3], [2, 3], [4, 5]])
    prior = TransitionPrior.fit(train, N_ITEMS)
    histories = SequenceArrays.from_lists([[2], [4]])
    ndcg = prior.tune(_uniform, histories, np.array([3, 5]), neighbour_grid=(0.0,))
    # Uniform model scores tie every item (pessimistic ranks: a miss); any weight > 0 ranks the
    # true successor first, and ties between weights go to the smallest.
    assert ndcg[(0.0, 0.0)] == 0.0 and ndcg[(0.1, 0.0)] == 1.0
    assert prior.weight == 0.1 and set(ndcg) == {(w, 0.0) for w in WEIGHT_GRID}
    prior.tune(_uniform, histories, np.array([6, 7]))  # targets the tables never saw
    assert (prior.weight, prior.neighbour_weight) == (0.0, 0.0)


def test_tune_keeps_seen_items_as_candidates_on_request_and_samples_large_validation_sets(monkeypatch):
    # After 3 the chain goes back to 2 (already in the history [2, 3]) twice as often as on to 4.
    prior = TransitionPrior.fit(SequenceArrays.from_lists([[2, 3, 2], [2, 3, 2], [2, 3, 4]]), N_ITEMS)
    histories, targets = SequenceArrays.from_lists([[2, 3]]), np.array([4])
    assert prior.tune(_uniform, histories, targets, neighbour_grid=(0.0,))[(0.1, 0.0)] == 1.0  # 2 is not a candidate
    kept = prior.tune(_uniform, histories, targets, neighbour_grid=(0.0,), filter_seen=False)
    assert kept[(0.1, 0.0)] == 1 / np.log2(3)  # 2 ranks first, the target second
    monkeypatch.setattr(prior_module, "TUNE_CASES", 3)
    many = SequenceArrays.from_lists([[2, 3]] * 6 + [[4]] * 6)
    ndcg = prior.tune(_uniform, many, np.array([2] * 6 + [9] * 6), neighbour_grid=(0.0,), filter_seen=False)
    assert ndcg[(0.1, 0.0)] in (0.0, 1 / 3, 2 / 3, 1.0)  # an average over 3 of the 12 cases


def test_neighbours_reach_items_two_steps_ahead_that_the_chain_ranks_second():
    # 2 -> 3 is the most common transition, but 4 follows 2 within three steps in every sequence.
    train = SequenceArrays.from_lists([[2, 3, 4], [2, 3, 4], [2, 5, 4]])
    prior = TransitionPrior.fit(train, N_ITEMS)
    histories = SequenceArrays.from_lists([[2]])
    assert prior.log_probabilities(histories)[0].argmax() == 3
    assert prior.neighbour_log_scores(histories)[0].argmax() == 4
    ndcg = prior.tune(_uniform, histories, np.array([4]))
    assert prior.weight == 0.0 and prior.neighbour_weight == 0.1 and ndcg[(0.0, 0.1)] == 1.0
    assert set(ndcg) == {(w, v) for w in WEIGHT_GRID for v in WEIGHT_GRID}


def test_save_and_load_keep_both_tables_and_read_a_chain_saved_alone(tmp_path):
    prior = TransitionPrior.fit(SequenceArrays.from_lists([[2, 3, 4], [2, 5]]), N_ITEMS)
    prior.save(tmp_path / "both")
    loaded = TransitionPrior.load(tmp_path / "both", 0.3, 0.5)
    histories = SequenceArrays.from_lists([[2, 3]])
    base = _uniform(histories)
    prior.weight, prior.neighbour_weight = 0.3, 0.5
    assert torch.equal(loaded.blend(base, histories), prior.blend(base, histories))
    prior.chain.save(tmp_path / "chain")  # a bundle written before the neighbour table existed
    old = TransitionPrior.load(tmp_path / "chain", 0.3, 0.5)
    assert old.neighbours is None and old.neighbour_weight == 0.0


def test_blend_adds_the_weighted_prior_and_grow_makes_room_for_new_items():
    prior = TransitionPrior.fit(SequenceArrays.from_lists([[2, 3]]), N_ITEMS)
    histories = SequenceArrays.from_lists([[2]])
    base = _uniform(histories)
    assert torch.equal(prior.blend(base, histories), base)  # weight 0: the model alone
    prior.weight = 0.5
    assert prior.blend(base, histories)[0].argmax() == 3
    prior.grow(N_ITEMS + 2)
    for log_p in (prior.log_probabilities(histories), prior.neighbour_log_scores(histories)):
        assert log_p.shape == (1, N_ITEMS + 2) and torch.isfinite(log_p[0, N_ITEMS:]).all()
