"""Every next-item model passes `NextItemModelContract`; each baseline also passes hand-checked cases.

A new model gets the contract by subclassing it and implementing `make_model`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopformer.data.sequences import SequenceArrays
from shopformer.errors import DataError
from shopformer.evaluate.ranking import evaluate_next_item
from shopformer.models.baselines import (
    ItemKNN,
    MarkovChain,
    MostPopular,
    NextItemModel,
    last_items,
)

N_ITEMS = 9  # codes 2..8 are items; 8 never occurs in training
TRAIN = [[2, 3, 4], [2, 3, 5], [3, 4, 2], [6, 2, 3], [7], [2, 1, 3], []]
HISTORIES = [np.array(h) for h in ([2], [3, 4], [], [1], [8], [7, 6, 2, 3, 4, 5], [6, 6])]


def csr(sequences):
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sequences])]).astype(np.int64)
    items = np.concatenate([np.asarray(s, dtype=np.int32) for s in sequences if len(s)])
    return offsets, items


class NextItemModelContract:
    """Behaviours shared by all next-item models (fit on `TRAIN`, score `HISTORIES`)."""

    def make_model(self) -> NextItemModel:
        raise NotImplementedError

    def fitted(self) -> NextItemModel:
        return self.make_model().fit(*csr(TRAIN), N_ITEMS)

    def test_fit_returns_the_model(self):
        model = self.make_model()
        assert model.fit(*csr(TRAIN), N_ITEMS) is model

    def test_scores_have_one_row_per_history_and_one_column_per_code(self):
        scores = self.fitted().score(HISTORIES)
        assert isinstance(scores, torch.Tensor) and scores.dtype == torch.float32
        assert scores.shape == (len(HISTORIES), N_ITEMS)

    def test_real_items_get_finite_scores(self):
        assert torch.isfinite(self.fitted().score(HISTORIES)[:, 2:]).all()

    def test_padding_and_unknown_are_never_recommended(self):
        scores = self.fitted().score(HISTORIES)
        assert torch.isneginf(scores[:, :2]).all()
        assert (scores.argmax(dim=1) >= 2).all()

    def test_scores_are_deterministic(self):
        assert torch.equal(self.fitted().score(HISTORIES), self.fitted().score(HISTORIES))

    def test_batch_of_one_equals_the_rows_of_a_batch(self):
        model = self.fitted()
        together = model.score(HISTORIES)
        for row, history in enumerate(HISTORIES):
            assert torch.equal(model.score([history])[0], together[row])

    def test_empty_history_and_empty_batch(self):
        model = self.fitted()
        assert torch.isfinite(model.score([np.array([], dtype=np.int64)])[0, 2:]).all()
        assert model.score([]).shape == (0, N_ITEMS)

    def test_padded_matrices_and_tensors_equal_lists(self):
        model = self.fitted()
        expected = model.score(HISTORIES)
        left = last_items(HISTORIES, 8)
        right = np.zeros_like(left)
        for row, history in enumerate(HISTORIES):
            right[row, : len(history)] = history
        assert torch.equal(model.score(left), expected)
        assert torch.equal(model.score(right), expected)
        assert torch.equal(model.score(torch.from_numpy(left)), expected)

    def test_save_load_round_trip(self, tmp_path):
        model = self.fitted()
        model.save(tmp_path / "model")
        for loader in (NextItemModel, type(model)):
            loaded = loader.load(tmp_path / "model")
            assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
            assert torch.equal(loaded.score(HISTORIES), model.score(HISTORIES))

    def test_load_refuses_another_model_class(self, tmp_path):
        self.fitted().save(tmp_path / "model")
        other = MarkovChain if not isinstance(self.make_model(), MarkovChain) else MostPopular
        with pytest.raises(DataError, match="holds a"):
            other.load(tmp_path / "model")

    def test_params_rebuild_an_equal_model(self):
        model = self.make_model()
        assert type(model)(**model.get_params()).get_params() == model.get_params()

    def test_scoring_before_fit_is_an_error(self):
        with pytest.raises(RuntimeError):
            self.make_model().score(HISTORIES)

    def test_out_of_range_codes_are_errors(self):
        with pytest.raises(ValueError):
            self.fitted().score([np.array([N_ITEMS])])
        with pytest.raises(ValueError):
            self.make_model().fit(*csr([[2, N_ITEMS]]), N_ITEMS)

    def test_inconsistent_offsets_are_errors(self):
        with pytest.raises(ValueError):
            self.make_model().fit(np.array([0, 5]), np.array([2, 3]), N_ITEMS)

    def test_works_as_an_evaluation_scorer(self):
        histories = SequenceArrays.from_lists([list(h) for h in HISTORIES])
        result = evaluate_next_item(self.fitted().score, histories, np.full(len(HISTORIES), 3), N_ITEMS, batch_size=3)
        assert 0.0 <= result["hr@5"] <= 1.0 and result["n_users"] == len(HISTORIES)


class TestMostPopular(NextItemModelContract):
    def make_model(self):
        return MostPopular()

    def test_scores_follow_occurrence_counts_whatever_the_history(self):
        model = MostPopular().fit(*csr([[2, 3], [2, 4], [2, 3]]), 6)
        scores = model.score([np.array([4]), np.array([])])
        assert torch.equal(scores[0], scores[1])
        assert scores[0, 2:].tolist() == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])


class TestItemKNN(NextItemModelContract):
    def make_model(self):
        return ItemKNN(neighbours=3, window=2, history_len=3)

    def test_cosine_similarity_with_recency_decay(self):
        model = ItemKNN(window=1, history_len=2, decay=0.5, popularity_weight=0.0)
        model.fit(*csr([[2, 3], [2, 3], [4, 5]]), 7)
        # c(2,3) = 2, n(2) = n(3) = 2: cosine 2 / sqrt(2 * 2) = 1; likewise 4-5 is 1 / sqrt(1 * 1) = 1.
        scores = model.score([np.array([4, 2])])[0]
        # 2 is the most recent item (weight 1), 4 the one before (weight 0.5).
        assert scores[2:].tolist() == pytest.approx([0.0, 1.0, 0.0, 0.5, 0.0])

    def test_cosine_penalises_popular_neighbours(self):
        model = ItemKNN(window=1, history_len=1, popularity_weight=0.0)
        model.fit(*csr([[2, 3], [2, 4], [4, 5], [4, 6], [4, 7]]), 8)
        scores = model.score([np.array([2])])[0]
        # c(2,3) = c(2,4) = 1, n(2) = 2, n(3) = 1, n(4) = 4: 1/sqrt(2) beats 1/sqrt(8).
        assert scores[3].item() == pytest.approx(1 / np.sqrt(2))
        assert scores[4].item() == pytest.approx(1 / np.sqrt(8))

    def test_only_the_top_neighbours_are_kept(self):
        model = ItemKNN(neighbours=1, window=1, history_len=1, popularity_weight=0.0)
        model.fit(*csr([[2, 3], [2, 3], [2, 4]]), 5)
        assert model.score([np.array([2])])[0, 2:].tolist() == pytest.approx([0.0, 2 / np.sqrt(6), 0.0])

    def test_window_links_items_further_apart(self):
        sequences = csr([[2, 3, 4]])
        near = ItemKNN(window=1, history_len=1).fit(*sequences, 5).score([np.array([2])])[0]
        far = ItemKNN(window=2, history_len=1).fit(*sequences, 5).score([np.array([2])])[0]
        assert near[4] < near[3] and far[4] > near[4]


class TestMarkovChain(NextItemModelContract):
    def make_model(self):
        return MarkovChain()

    def test_transition_probabilities_from_the_last_item(self):
        model = MarkovChain(backoff_weight=0.0).fit(*csr([[2, 3], [2, 3], [2, 4]]), 6)
        scores = model.score([np.array([4, 2])])[0]
        assert scores[2:].tolist() == pytest.approx([0.0, 2 / 3, 1 / 3, 0.0])

    def test_backs_off_to_popularity_for_an_item_never_followed(self):
        model = MarkovChain(backoff_weight=0.01).fit(*csr([[2, 3], [2, 3], [2, 4]]), 6)
        scores = model.score([np.array([4]), np.array([]), np.array([1])])
        assert torch.equal(scores[0], scores[1]) and torch.equal(scores[0], scores[2])
        assert scores[0].argsort(descending=True)[:3].tolist() == [2, 3, 4]

    def test_keeps_the_most_likely_successors(self):
        model = MarkovChain(max_successors=1, backoff_weight=0.0).fit(*csr([[2, 3], [2, 3], [2, 4]]), 6)
        assert model.score([np.array([2])])[0, 2:].tolist() == pytest.approx([0.0, 2 / 3, 0.0, 0.0])


def test_last_items_right_aligns_and_pads():
    assert last_items([np.array([2, 3, 4]), np.array([5]), np.array([])], 2).tolist() == [[3, 4], [0, 5], [0, 0]]
