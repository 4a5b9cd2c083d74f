"""The next-item models under the estimator contract (`tests/contract/base.py`): the `Shopformer`
estimator and every baseline of `shopformer.models.baselines`, each class only providing the hooks.

Shopformer's top-k goes through `recommend(sequences=...)`; the baselines' through `score` and the
same `top_k_items` path `recommend` uses.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from shopformer import Shopformer
from shopformer.data.codes import FIRST_CODE, UNKNOWN_CODE
from shopformer.data.schema import Dataset
from shopformer.data.sequences import SequenceArrays
from shopformer.models.baselines import ItemKNN, MarkovChain, MostPopular, NextItemModel
from tests.contract.base import SEED, BadInput, NextItemContract, as_numpy
from tests.contract.conftest import TINY_MODEL, TINY_TRAIN


def _recommend(**kwargs):
    return lambda contract, model, data, tmp_path: model.recommend(**kwargs)


def _fit_without_next_items(contract, model, data, tmp_path):
    one_each = data.dataset.events.frame.unique("user_id", keep="first", maintain_order=True)
    return contract._get_model(data).fit(Dataset("one-event-each", data.dataset.events.with_frame(one_each)))


class TestShopformer(NextItemContract):
    EXACT_BATCHING = False  # float sums over differently padded batches
    BAD_INPUTS = NextItemContract.BAD_INPUTS + (
        BadInput("k=0", _recommend(users=["u000"], k=0), "k must be at least 1"),
        BadInput("users and sequences", _recommend(users=["u000"], sequences=[["i001"]]), "exactly one"),
        BadInput("neither users nor sequences", _recommend(k=3), "exactly one"),
        BadInput("sequences as one flat list", _recommend(sequences=["i001", "i002"]), "list of item-id lists"),
        BadInput("no known candidate item", _recommend(users=["u000"], items=["no-such-item"]), "none of the requested"),
        BadInput("unknown config key", lambda c, m, d, p: Shopformer(model={"layerz": 3}), "layerz"),
        BadInput("nobody has a next item", _fit_without_next_items, "two or more events"),
    )

    def _get_model(self, data, seed: int = SEED) -> Shopformer:
        return Shopformer(model=TINY_MODEL, train={**TINY_TRAIN, "seed": seed})

    def _fit(self, model: Shopformer, data) -> Shopformer:
        model.fit(data.prepared)
        assert model.item_features.n_items == data.n_items  # the estimator's codes are the prepared ones
        return model

    def _score(self, model: Shopformer, histories: SequenceArrays) -> torch.Tensor:
        return model.score_histories(histories) if histories.event_types is not None else model.score_items(histories)

    def _load(self, path, data) -> Shopformer:
        return Shopformer.load(path)

    def _reloaded(self, model, data, tmp_path):
        return {**super()._reloaded(model, data, tmp_path), "to_state/from_state": Shopformer.from_state(model.to_state())}

    def _top_k(self, model, histories, k, filter_seen=True, allowed=None):
        """Through `recommend(sequences=..., items=...)`: codes become item ids and back."""
        ids = model.item_features_.item_ids

        def item_id(code: int) -> str:
            return str(ids[code]) if code >= FIRST_CODE else f"contract-unknown-item-{code}"

        n = len(histories.lengths)
        sequences = [[item_id(int(c)) for c in histories.rows([r]).items] for r in range(n)]
        items = None if allowed is None else [item_id(int(c)) for c in np.flatnonzero(allowed)]
        table = model.recommend(sequences=sequences, k=k, filter_seen=filter_seen, items=items)
        assert table.columns == ["user_id", "item_id", "score", "rank", "source"]
        rows = []
        for r in range(n):
            mine = table.filter(table["user_id"] == str(r))
            assert mine["rank"].to_list() == list(range(1, mine.height + 1))
            rows.append((model.item_codes(mine["item_id"].to_list()).astype(np.int64), mine["score"].to_numpy()))
        return rows

    # 2 through users= ------------------------------------------------------------------------------
    def test_recommend_for_known_users_skips_exactly_their_stored_history(self, fitted, data):
        users = fitted.known_users()[:4]
        table = fitted.recommend(users=users, k=data.n_items)
        for user in users:
            history = fitted.user_histories([user]).items
            assert len(history) > 0
            seen = set(fitted.item_features_.item_ids[history].astype(str))
            mine = table.filter(table["user_id"] == user)
            assert set(mine["item_id"]) == set(fitted.item_features_.item_ids[FIRST_CODE:].astype(str)) - seen
            assert set(mine["source"]) == {"model"}

    # 3 ---------------------------------------------------------------------------------------------
    def test_unknown_user_gets_the_popular_items(self, fitted, data):
        table = fitted.recommend(users=["no-such-user"], k=5)
        assert table["source"].to_list() == ["popular"] * 5 and set(table["user_id"]) == {"no-such-user"}
        log_popularity = np.log1p(fitted.popularity_)  # ties at the cut make the ids, not the scores, ambiguous
        np.testing.assert_array_equal(table["score"].to_numpy(), np.sort(log_popularity[FIRST_CODE:])[::-1][:5])
        np.testing.assert_array_equal(table["score"].to_numpy(), log_popularity[fitted.item_codes(table["item_id"])])
        assert table.drop("user_id").equals(fitted.recommend(sequences=[[]], k=5).drop("user_id"))

    def test_unknown_item_ids_are_read_as_the_unknown_item_and_never_recommended(self, fitted, data):
        """An id the model does not know becomes code 1 (as a search does in the service), it does
        not raise, is not in the results, and leaves the recommendation to the model."""
        known = str(fitted.item_features_.item_ids[int(data.probe.items[0])])
        table = fitted.recommend(sequences=[[known, "no-such-item"]], k=5, filter_seen=False)
        assert set(table["source"]) == {"model"} and "no-such-item" not in table["item_id"].to_list()
        expected = as_numpy(fitted.score_items(SequenceArrays.from_lists([[int(data.probe.items[0]), UNKNOWN_CODE]])))[0]
        codes = fitted.item_codes(table["item_id"].to_list())
        np.testing.assert_array_equal(table["score"].to_numpy(), expected[codes])


# ================================================================================ baselines




def _fit_out_of_range(contract, model, data, tmp_path):
    return contract._get_model(data).fit(data.arrays.offsets, data.arrays.items, 5)


def _load_as_another_class(contract, model, data, tmp_path):
    other = MarkovChain if isinstance(model, MostPopular) else MostPopular
    return other.load(model.save(tmp_path / "saved"))


def _load_another_format(contract, model, data, tmp_path):
    (tmp_path / "model.json").write_text('{"format": "something.else"}')
    return NextItemModel.load(tmp_path)


class BaselineContract(NextItemContract):
    """The next-item contract on a `NextItemModel`; subclasses name the class in `MODEL`."""

    MODEL: ClassVar[type[NextItemModel]]
    SEEDED = "counting models are deterministic: there is no seed to vary"
    THREADS = "NumPy only: a baseline has no torch thread setting to change or restore"
    BAD_INPUTS = NextItemContract.BAD_INPUTS + (
        BadInput("fit on codes beyond n_items", _fit_out_of_range, "item codes"),
        BadInput("load a saved model of another class", _load_as_another_class, "holds a"),
        BadInput("load a model.json of another format", _load_another_format, "next-item model"),
    )

    def _get_model(self, data, seed: int = SEED) -> NextItemModel:
        return self.MODEL()

    def _fit(self, model: NextItemModel, data) -> NextItemModel:
        return model.fit(data.arrays.offsets, data.arrays.items, data.n_items)

    def _score(self, model: NextItemModel, histories) -> torch.Tensor:
        return model.score(histories)

    def _load(self, path, data) -> NextItemModel:
        loaded = NextItemModel.load(path)
        assert type(loaded) is self.MODEL
        return loaded

    # 1 ---------------------------------------------------------------------------------------------
    def test_every_history_form_gives_the_same_scores(self, fitted, data):
        rows = [data.probe.rows([r]).items.astype(np.int64) for r in range(len(data.probe.lengths))]
        width = max(len(r) for r in rows) + 2
        left = np.zeros((len(rows), width), dtype=np.int64)
        right = np.zeros_like(left)
        for i, r in enumerate(rows):
            left[i, width - len(r):], right[i, : len(r)] = r, r
        expected = self._predict(fitted, data)
        for form in (rows, left, torch.from_numpy(left), right):
            np.testing.assert_array_equal(as_numpy(fitted.score(form)), expected)

    # 4 ---------------------------------------------------------------------------------------------
    def test_empty_history_scores_are_finite(self, fitted, data):
        scores = as_numpy(fitted.score([np.zeros(0, dtype=np.int64)]))
        assert np.isfinite(scores[:, FIRST_CODE:]).all() and np.isneginf(scores[:, :FIRST_CODE]).all()


class TestMostPopular(BaselineContract):
    MODEL = MostPopular


class TestItemKNN(BaselineContract):
    MODEL = ItemKNN


class TestMarkovChain(BaselineContract):
    MODEL = MarkovChain


def test_every_baseline_is_under_the_contract():
    """A baseline added to `shopformer.models.baselines` must get a contract class here."""
    from shopformer.models import baselines

    covered = {cls.MODEL for cls in BaselineContract.__subclasses__()}
    assert {getattr(baselines, name) for name in baselines.__all__
            if isinstance(getattr(baselines, name), type) and getattr(baselines, name) is not NextItemModel} == covered

