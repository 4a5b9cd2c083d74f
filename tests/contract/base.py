"""The estimator contract: behaviours every Shopformer model keeps, written once, checked per model.

Modelled on the `implicit` library's `tests/recommender_base.py`: a mixin holds the checks, and each
model's test class only provides hooks (`_get_model`, and how its family fits, scores and saves).

    EstimatorContract   (every model)  5 save -> load is bit-identical   6 same seed -> same model
                                       7 torch thread setting restored   8 bad input -> ShopformerError
    NextItemContract    (next-item)    1 batch == one by one   2 filter_seen / candidate lists
                                       3 unknown items          4 empty and one-event histories
    TaskModelContract   (task models)  1 batch == one by one   3 users never seen   4 short histories

The next-item checks go through the one top-k path (`evaluate.ranking.top_k_items` with
`history_cells`) that `Shopformer.recommend` and the service use; `Shopformer` overrides `_top_k` to
go through `recommend` itself. A behaviour that does not apply to a family is skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from shopformer.data.codes import FIRST_CODE, UNKNOWN_CODE
from shopformer.data.sequences import SequenceArrays
from shopformer.errors import ShopformerError
from shopformer.evaluate.ranking import history_cells, top_k_items
from shopformer.predict.tasks import behaviour_source
from shopformer.tasks.base import TaskExamples
from shopformer.tasks.registry import load_model, make_model
from tests.contract.conftest import OUTER_THREADS, outer_threads

SEED = 7


@dataclass(frozen=True)
class BadInput:
    """A misuse that must raise a `ShopformerError` whose message matches `match`.
    `call(contract, fitted_model, data, tmp_path)` performs it."""

    name: str
    call: Callable[[Any, Any, Any, Path], Any]
    match: str


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def as_numpy(scores: Any) -> np.ndarray:
    return scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)


@dataclass
class Refit:
    """A second model fitted like the class's `fitted` one, with the thread counts seen meanwhile."""

    model: Any
    scores: np.ndarray
    threads_after_fit: int
    threads_after_predict: int


class EstimatorContract:
    """Behaviours 5-8. Hooks: `data` fixture, `_get_model(data, seed)` (unfitted), `_fit`, `_predict`, `_save`, `_load`."""

    #: Whether a training seed reaches the model (else the "another seed" check does not apply).
    SEEDED: ClassVar[str | None] = None  # None when seeded, else the reason it is not
    THREADS: ClassVar[str | None] = None  # None when the model has a torch thread setting, else why not
    BAD_INPUTS: ClassVar[tuple[BadInput, ...]] = ()

    def _get_model(self, data: Any, seed: int = SEED) -> Any:
        raise NotImplementedError

    def _fit(self, model: Any, data: Any) -> Any:
        raise NotImplementedError

    def _predict(self, model: Any, data: Any) -> np.ndarray:
        """The scores or probabilities every check compares: those of the family's probe inputs."""
        raise NotImplementedError

    def _save(self, model: Any, path: Path) -> None:
        model.save(path)

    def _load(self, path: Path, data: Any) -> Any:
        raise NotImplementedError

    def _reloaded(self, model: Any, data: Any, tmp_path: Path) -> dict[str, Any]:
        """Every way the model comes back from storage, by name."""
        self._save(model, tmp_path / "saved")
        return {"save/load": self._load(tmp_path / "saved", data)}

    # Class-scoped fixtures are classmethods (pytest 9); they call the hooks on an instance of the class.
    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data):
        self = cls()
        with outer_threads():
            return self._fit(self._get_model(data, SEED), data)

    @pytest.fixture(scope="class")
    @classmethod
    def refit(cls, data) -> Refit:
        self = cls()
        with outer_threads():
            model = self._fit(self._get_model(data, SEED), data)
            after_fit = torch.get_num_threads()
            scores = self._predict(model, data)
            return Refit(model, scores, after_fit, torch.get_num_threads())

    # 5 ---------------------------------------------------------------------------------------------
    def test_save_then_load_gives_bit_identical_scores(self, fitted, data, tmp_path):
        before = self._predict(fitted, data)
        for way, reloaded in self._reloaded(fitted, data, tmp_path).items():
            after = self._predict(reloaded, data)
            assert after.dtype == before.dtype, way
            assert np.array_equal(after, before), f"{way}: max difference {np.nanmax(np.abs(after - before))}"

    # 6 ---------------------------------------------------------------------------------------------
    def test_same_seed_gives_the_same_model(self, fitted, refit, data):
        assert np.array_equal(refit.scores, self._predict(fitted, data))

    def test_another_seed_gives_another_model(self, fitted, data):
        """Guards the check above: the seed really reaches the model."""
        if self.SEEDED is not None:
            pytest.skip(self.SEEDED)
        with outer_threads():
            other = self._fit(self._get_model(data, SEED + 1), data)
        assert not np.array_equal(self._predict(other, data), self._predict(fitted, data))

    # 7 ---------------------------------------------------------------------------------------------
    def test_thread_setting_is_restored_after_fit_and_predict(self, refit):
        if self.THREADS is not None:
            pytest.skip(self.THREADS)
        assert (refit.threads_after_fit, refit.threads_after_predict) == (OUTER_THREADS, OUTER_THREADS)

    # 8 ---------------------------------------------------------------------------------------------
    def test_predicting_before_fit_is_a_shopformer_error(self, data):
        with pytest.raises(ShopformerError, match="not fitted"):
            self._predict(self._get_model(data), data)

    def test_loading_a_folder_that_is_not_a_saved_model_is_a_shopformer_error(self, data, tmp_path):
        (tmp_path / "notes.txt").write_text("not a model")
        with pytest.raises(ShopformerError, match=re.escape(str(tmp_path))):
            self._load(tmp_path, data)

    def test_bad_input_is_a_shopformer_error(self, fitted, data, tmp_path, bad_input: BadInput):
        with pytest.raises(ShopformerError, match=bad_input.match):
            bad_input.call(self, fitted, data, tmp_path)


# ================================================================================ next-item models


def _histories(*codes: list[int]) -> SequenceArrays:
    return SequenceArrays.from_lists([list(c) for c in codes])


def _out_of_range(code: Callable[[Any], int]) -> Callable:
    return lambda contract, model, data, tmp_path: contract._score(model, _histories([FIRST_CODE, code(data)]))


class NextItemContract(EstimatorContract):
    """Behaviours 1-4 of next-item models. Extra hooks: `_score(model, histories)` -> `(n, n_items)`;
    `_top_k(model, histories, k, filter_seen, allowed)` -> per row the (codes, scores) left, best first."""

    #: Batch scores must equal one-by-one scores exactly (else within `torch.testing` tolerance).
    EXACT_BATCHING: ClassVar[bool] = True
    BAD_INPUTS = (
        BadInput("out-of-range item code", _out_of_range(lambda data: data.n_items), "item code"),
        BadInput("negative item code", _out_of_range(lambda data: -1), "item code"),
    )

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls, tiny_shop):
        return tiny_shop

    def _score(self, model: Any, histories: SequenceArrays) -> np.ndarray:
        raise NotImplementedError

    def _predict(self, model: Any, data: Any) -> np.ndarray:
        return as_numpy(self._score(model, data.probe))

    def _top_k(self, model: Any, histories: SequenceArrays, k: int, filter_seen: bool = True,
               allowed: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        scores = as_numpy(self._score(model, histories)).copy()  # top_k_items writes into it
        exclude = history_cells(histories) if filter_seen else None
        codes, top = top_k_items(scores, k, exclude=exclude, allowed=allowed)
        return [(c[np.isfinite(s)], s[np.isfinite(s)]) for c, s in zip(codes, top)]

    def _assert_same_scores(self, actual: np.ndarray, expected: np.ndarray) -> None:
        if self.EXACT_BATCHING:
            np.testing.assert_array_equal(actual, expected)
        else:
            torch.testing.assert_close(torch.from_numpy(actual), torch.from_numpy(expected), rtol=1e-5, atol=1e-6)

    # 1 ---------------------------------------------------------------------------------------------
    def test_batch_scores_equal_one_by_one_scores(self, fitted, data):
        together = self._predict(fitted, data)
        alone = np.concatenate([as_numpy(self._score(fitted, data.probe.rows([i]))) for i in range(len(data.probe.lengths))])
        assert together.shape == (len(data.probe.lengths), data.n_items)
        self._assert_same_scores(together, alone)

    # 2 ---------------------------------------------------------------------------------------------
    def test_filter_seen_removes_exactly_the_history_items(self, fitted, data):
        every = data.n_items - FIRST_CODE
        kept = self._top_k(fitted, data.probe, every, filter_seen=False)
        filtered = self._top_k(fitted, data.probe, every, filter_seen=True)
        for row, ((all_codes, _), (codes, scores)) in enumerate(zip(kept, filtered)):
            seen = set(data.probe.rows([row]).items.tolist())
            assert set(all_codes.tolist()) == data.real_codes
            assert set(codes.tolist()) == data.real_codes - seen
            assert len(codes) == len(set(codes.tolist())) and np.all(np.diff(scores) <= 0)

    def test_candidate_list_restricts_results_to_those_items(self, fitted, data):
        candidates = {int(data.probe.items[0]), FIRST_CODE + 3, FIRST_CODE + 7, data.n_items - 1}
        allowed = np.zeros(data.n_items, dtype=bool)
        allowed[sorted(candidates)] = True
        kept = self._top_k(fitted, data.probe, len(candidates), filter_seen=False, allowed=allowed)
        filtered = self._top_k(fitted, data.probe, len(candidates), filter_seen=True, allowed=allowed)
        for row, ((all_codes, _), (codes, _)) in enumerate(zip(kept, filtered)):
            seen = set(data.probe.rows([row]).items.tolist())
            assert set(all_codes.tolist()) == candidates
            assert set(codes.tolist()) == candidates - seen

    def test_top_k_are_the_best_scored_items_in_order(self, fitted, data):
        codes_only = SequenceArrays(data.probe.offsets, data.probe.items)  # the form `recommend(sequences=)` reads
        scores = as_numpy(self._score(fitted, codes_only))
        for row, (codes, top) in enumerate(self._top_k(fitted, codes_only, 5, filter_seen=False)):
            assert len(codes) == 5 and np.all(np.diff(top) <= 0)
            others = np.setdiff1d(np.arange(FIRST_CODE, data.n_items), codes)
            assert top[-1] >= scores[row, others].max()

    # 3 ---------------------------------------------------------------------------------------------
    def test_history_of_unknown_items_scores_like_an_empty_history(self, fitted, data):
        (unknown_codes, unknown_scores), (empty_codes, empty_scores) = self._top_k(
            fitted, _histories([UNKNOWN_CODE, UNKNOWN_CODE], []), 5)
        assert len(unknown_codes) == 5 and np.isfinite(unknown_scores).all()
        np.testing.assert_array_equal(unknown_codes, empty_codes)
        np.testing.assert_array_equal(unknown_scores, empty_scores)

    # 4 ---------------------------------------------------------------------------------------------
    def test_empty_and_one_event_histories_give_valid_recommendations(self, fitted, data):
        item = int(data.probe.items[0])
        rows = self._top_k(fitted, _histories([], [item]), 5)
        for codes, scores in rows:
            assert len(codes) == 5 and np.isfinite(scores).all() and (codes >= FIRST_CODE).all()
        assert item not in rows[1][0].tolist()  # filter_seen applies to a one-event history too
        one = as_numpy(self._score(fitted, _histories([item])))
        assert one.shape == (1, data.n_items)
        assert np.isfinite(one[:, FIRST_CODE:]).all() and np.isneginf(one[:, :FIRST_CODE]).all()


# ================================================================================ task models


class TaskModelContract(EstimatorContract):
    """Behaviours 1, 3, 4 of task models (binary churn: `predict_proba` -> P(label = 1), shape `(n,)`).
    Hook: `NAME`, the `MODEL_FACTORIES` key; `_get_model` makes it on the shared behaviour model."""

    NAME: ClassVar[str] = ""
    BAD_INPUTS = (
        BadInput("fit without training examples", lambda contract, model, data, tmp_path: contract._get_model(data).fit(
            TaskExamples(data.train.task, data.train.frame.head(0), data.train.classes), data.valid, data.context),
            "churn'? needs?"),
        BadInput("model.json of no known task model", lambda contract, model, data, tmp_path: contract._load(
            _write(tmp_path / "model.json", '{"kind": "mystery"}').parent, data), "task model"),
    )

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls, task_data):
        return task_data

    def _get_model(self, data: Any, seed: int = SEED) -> Any:
        model = make_model(self.NAME, data.context, data.shared)
        if hasattr(model, "training"):  # a TransformerTaskModel: two epochs, not the fine-tuning recipe's budget
            model.training = dataclasses.replace(model.training, max_epochs=2, patience=1, seed=seed)
        return model

    def _fit(self, model: Any, data: Any) -> Any:
        return model.fit(data.train, data.valid, data.context)

    def _load(self, path: Path, data: Any) -> Any:
        return load_model(path, behaviour_source())  # a fresh source: nothing but the folder to load from

    def _predict(self, model: Any, data: Any) -> np.ndarray:
        return model.predict_proba(data.test, data.context)

    def _assert_probabilities(self, probs: np.ndarray, n: int) -> None:
        assert probs.shape == (n,) and np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()

    # 1 ---------------------------------------------------------------------------------------------
    def test_batch_probabilities_equal_one_by_one(self, fitted, data):
        together = self._predict(fitted, data)[:6]
        rows = [TaskExamples(data.test.task, data.test.frame.slice(i, 1), data.test.classes) for i in range(6)]
        alone = np.concatenate([fitted.predict_proba(row, data.context) for row in rows])
        np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)

    def test_filter_seen_and_candidate_lists(self):
        pytest.skip("task models score given examples: there is no item ranking to filter or restrict")

    # 3 ---------------------------------------------------------------------------------------------
    def test_users_never_seen_get_valid_probabilities(self, fitted, data):
        self._assert_probabilities(fitted.predict_proba(data.unseen, data.unseen_context), len(data.unseen))

    # 4 ---------------------------------------------------------------------------------------------
    def test_one_event_and_empty_histories_get_valid_probabilities(self, fitted, data):
        for examples in (data.one_event, data.empty):
            self._assert_probabilities(fitted.predict_proba(examples, data.context), len(examples))
