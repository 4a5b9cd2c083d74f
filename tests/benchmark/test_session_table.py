"""The session-table benchmark document: every model on valid and test, intervals, the published comparison."""

from __future__ import annotations

import pytest

from shopformer.benchmark.session_table import PUBLISHED, run_session_benchmark
from shopformer.data.session_table import read_session_table
from shopformer.errors import ConfigError
from tests.data.session_cases import CODES, write_session_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return read_session_table(write_session_table(tmp_path_factory.mktemp("s") / "s.csv", rows=1000), "Revenue",
                              categorical=CODES)


def test_the_document_holds_every_figure_with_its_interval(table):
    document = run_session_benchmark(table, resamples=30)
    assert {"dataset", "protocol", "published", "machine", "versions", "results", "comparison"} <= set(document)
    assert document["dataset"]["split_rows"] == {"train": 700, "valid": 100, "test": 200}
    assert [(r["model"], r["split"]) for r in document["results"]] == [
        ("lightgbm", "valid"), ("lightgbm", "test"), ("mlp", "valid"), ("mlp", "test")]
    for result in document["results"]:
        metrics = result["metrics"]
        for name in ("auc", "pr_auc", "ece", "accuracy", "f1_positive", "f1_macro", "f1_weighted", "balanced_f1"):
            assert len(metrics[f"{name}_ci"]) == 2, name
        assert result["split"] == "valid" or metrics["auc"] > 0.75
    comparison = document["comparison"][0]
    assert comparison["accuracy_delta"] == pytest.approx(comparison["accuracy"] - PUBLISHED["mlp"]["accuracy"], abs=1e-4)


def test_unknown_models_are_refused(table):
    with pytest.raises(ConfigError, match="choose from lightgbm, mlp"):
        run_session_benchmark(table, models=["svm"])
