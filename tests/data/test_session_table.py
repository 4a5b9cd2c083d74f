"""Session tables: columns typed from their values, yes/no labels, and clear errors for bad tables."""

from __future__ import annotations

import polars as pl
import pytest

from shopformer.data.session_table import read_session_table
from shopformer.errors import DataError
from tests.conftest import dataset_path
from tests.data.session_cases import CODES, write_session_table


def test_columns_are_typed_from_their_values(tmp_path):
    table = read_session_table(write_session_table(tmp_path / "sessions.csv"), "Revenue", categorical=CODES)
    assert len(table) == 800 and set(table.labels) == {0, 1}
    assert table.numeric == ("ProductRelated", "ProductRelated_Duration", "BounceRates", "PageValues", "Weekend")
    assert table.categorical == ("Month", "VisitorType", "Browser")
    assert set(table.features["Weekend"].unique()) == {0.0, 1.0}
    assert table.features["Browser"].dtype == pl.String and "Revenue" not in table.features.columns
    assert table.take([0, 5]).labels.tolist() == table.labels[[0, 5]].tolist()


@pytest.mark.parametrize("values", [("1", "0"), ("yes", "No"), ("True", "false")])
def test_label_spellings(tmp_path, values):
    path = tmp_path / "t.csv"
    path.write_text("pages,bought\n3," + values[0] + "\n1," + values[1] + "\n4," + values[0] + "\n")
    assert read_session_table(path, "bought").labels.tolist() == [1, 0, 1]


def _error(tmp_path, text: str, label: str = "bought", **options) -> str:
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        read_session_table(path, label, **options)
    message = str(caught.value)
    assert str(path) in message
    return message


def test_a_missing_label_column_names_the_columns(tmp_path):
    message = _error(tmp_path, "pages,Revenue\n3,TRUE\n1,FALSE\n")
    assert "no label column 'bought'" in message and "pages, Revenue" in message


def test_a_non_binary_label_names_its_row(tmp_path):
    message = _error(tmp_path, "pages,bought\n3,TRUE\n1,maybe\n")
    assert "row 3, column 'bought'" in message and "TRUE/FALSE, 1/0 or yes/no" in message and "'maybe'" in message
    assert "row 2" in _error(tmp_path, "pages,bought\n3,\n1,FALSE\n")  # an empty label
    assert "only the value" in _error(tmp_path, "pages,bought\n3,TRUE\n1,TRUE\n")


def test_other_bad_tables_are_clear_errors(tmp_path):
    assert "row 3" in _error(tmp_path, "pages,bought\n3,TRUE\n1,FALSE,9\n")  # a field too many
    assert "no named column 'browser'" in _error(tmp_path, "pages,bought\n3,TRUE\n1,FALSE\n", categorical=["browser"])
    stray = "pages,bought\n" + "".join(f"{k},{k % 2}\n" for k in range(20)) + "many,1\n"
    assert "row 22, column 'pages': is not a number in a numeric column" in _error(tmp_path, stray)
    ids = "sid,pages,bought\n" + "".join(f"s{k},{k},{k % 2}\n" for k in range(60))
    assert "--drop" in _error(tmp_path, ids)
    path = tmp_path / "t.csv"
    assert read_session_table(path, "bought", drop=["sid"]).numeric == ("pages",)
    assert "no feature column" in _error(tmp_path, "bought\nTRUE\nFALSE\n")


def test_the_uci_online_shoppers_table():
    path = dataset_path("online-shoppers-intention") / "online_shoppers_intention.csv"
    table = read_session_table(path, "Revenue", categorical=["OperatingSystems", "Browser", "Region", "TrafficType"])
    assert (len(table), int(table.labels.sum())) == (12_330, 1_908)
    assert table.categorical == ("Month", "OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType")
    assert len(table.numeric) == 11 and table.features.null_count().sum_horizontal().item() == 0
