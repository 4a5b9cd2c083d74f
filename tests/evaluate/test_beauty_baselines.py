"""Baselines on the real Amazon Beauty data under the published leave-one-out, full-ranking protocol."""

from __future__ import annotations

import time

import numpy as np
import pytest

from shopformer.data.sequences import SequenceArrays
from shopformer.evaluate.ranking import evaluate_next_item, leave_one_out_targets
from shopformer.models.baselines import ItemKNN, MarkovChain, MostPopular
from tests.conftest import dataset_path


@pytest.fixture(scope="module")
def beauty():
    """Beauty sequences as CSR; item `i` (1..12101 in the file) becomes code `i + 1`, so codes start at 2."""
    lines = (dataset_path("amazon-beauty") / "Beauty.txt").read_text().splitlines()
    sequences = [np.array(line.split()[1:], dtype=np.int64) + 1 for line in lines]
    offsets = np.concatenate([[0], np.cumsum([s.size for s in sequences])])
    items = np.concatenate(sequences)
    return offsets, items, int(items.max()) + 1


@pytest.mark.parametrize(
    ("model", "low", "high"),
    [(MostPopular(), 0.005, 0.03), (ItemKNN(), 0.04, 0.2), (MarkovChain(), 0.04, 0.2)],
    ids=["MostPopular", "ItemKNN", "MarkovChain"],
)
def test_baselines_on_beauty_test_split(beauty, model, low, high):
    offsets, items, n_items = beauty
    sequences = SequenceArrays(offsets, items)
    train, _ = leave_one_out_targets(sequences, "valid")  # valid histories = the training part
    histories, targets = leave_one_out_targets(sequences, "test")
    model.fit(train.offsets, train.items, n_items)
    started = time.perf_counter()
    result = evaluate_next_item(model.score, histories, targets, n_items)
    seconds = time.perf_counter() - started
    print(f"\n{type(model).__name__} Beauty test (full ranking, no seen filter): "
          f"HR@10 {result['hr@10']:.4f} NDCG@10 {result['ndcg@10']:.4f} in {seconds:.2f} s")
    assert result["n_users"] == 22_363 and n_items == 12_103
    assert low < result["hr@10"] < high
    assert result["ndcg@10"] < result["hr@10"]
    assert seconds < 10.0
