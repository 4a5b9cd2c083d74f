"""Session-table models: a stratified seeded split, an encoder fitted on training rows only, both models learn."""

from __future__ import annotations

import numpy as np
import pytest

from shopformer.data.session_table import SessionTable, read_session_table
from shopformer.errors import ConfigError, DataError
from shopformer.evaluate.binary import roc_auc
from shopformer.tasks.session_table import SESSION_MODELS, TableEncoder, make_session_model, stratified_split
from tests.data.session_cases import CODES, write_session_table


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> SessionTable:
    path = write_session_table(tmp_path_factory.mktemp("sessions") / "sessions.csv", rows=1200, seed=1)
    return read_session_table(path, "Revenue", categorical=CODES)


def test_the_split_is_stratified_disjoint_and_seeded(table):
    split = stratified_split(table.labels, seed=3)
    rows = np.concatenate(list(split.parts().values()))
    assert len(rows) == len(table) and len(np.unique(rows)) == len(table)
    sizes = [len(part) for part in split.parts().values()]
    assert sizes == pytest.approx([840, 120, 240], abs=2)
    rates = [table.labels[part].mean() for part in split.parts().values()]
    assert max(rates) - min(rates) < 0.01
    assert np.array_equal(stratified_split(table.labels, seed=3).test, split.test)
    assert not np.array_equal(stratified_split(table.labels, seed=4).test, split.test)
    with pytest.raises(ConfigError, match="three positive shares"):
        stratified_split(table.labels, fractions=(0.8, 0.2, 0.0))
    with pytest.raises(DataError, match="only one class"):
        stratified_split(np.array([1, 0, 0, 0, 0, 0]))


def test_the_encoder_keeps_only_levels_frequent_in_training(table):
    train = table.take(np.flatnonzero(table.features["VisitorType"] != "Other"))
    encoder = TableEncoder(min_count=10).fit(train)
    names = encoder.feature_names
    assert "VisitorType=Returning_Visitor" in names and "VisitorType=Other" not in names and "VisitorType=other" in names
    x = encoder.transform(table)
    assert x.shape == (len(table), len(names))
    other = x[:, names.index("VisitorType=other")]
    assert np.array_equal(other == 1, (table.features["VisitorType"] == "Other").to_numpy())


@pytest.mark.parametrize("name", list(SESSION_MODELS))
def test_each_model_learns_the_signal(table, name):
    split = stratified_split(table.labels, seed=0)
    encoder = TableEncoder().fit(table.take(split.train))
    x = {k: encoder.transform(table.take(rows)) for k, rows in split.parts().items()}
    y = {k: table.labels[rows] for k, rows in split.parts().items()}
    model = make_session_model(name).fit(x["train"], y["train"], x["valid"], y["valid"])
    probs = model.predict_proba(x["test"])
    assert probs.shape == (len(split.test),) and 0 <= probs.min() and probs.max() <= 1
    assert roc_auc(y["test"], probs) > 0.75 and model.params


def test_an_unknown_model_lists_the_known_ones():
    with pytest.raises(ConfigError, match="lightgbm, mlp"):
        make_session_model("svm")
