"""Reading logged bandit feedback in the Open Bandit Dataset layout, and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopformer.data.bandit import read_open_bandit
from shopformer.errors import DataError

OBD = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "open-bandit-sample"


def _folder(tmp_path, propensity="0.5") -> Path:
    folder = tmp_path / "random" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy.csv").write_text(",timestamp,item_id,position,click,propensity_score,user_feature_0\n"
                                    f"0,t,0,1,0,{propensity},a\n1,t,1,2,1,0.5,b\n2,t,1,1,0,0.5,a\n")
    (folder / "item_context.csv").write_text(",item_id,item_feature_0,item_feature_1\n0,0,0.3,x\n1,1,-0.2,y\n")
    return folder


def test_a_log_reads_into_zero_based_slots_with_one_hot_contexts(tmp_path):
    log = read_open_bandit(_folder(tmp_path))
    assert log.n_rounds == 3 and log.n_actions == 2 and log.len_list == 2
    assert log.positions.tolist() == [0, 1, 0] and log.rewards.tolist() == [0.0, 1.0, 0.0]
    assert log.context.shape == (3, 1) and log.action_context.shape == (2, 2)  # first level dropped
    assert np.allclose(log.action_context[:, 0], [0.3, -0.2])


def test_a_bad_propensity_names_the_file_row_and_column(tmp_path):
    with pytest.raises(DataError, match=r"toy.csv, row 2, column 'propensity_score'"):
        read_open_bandit(_folder(tmp_path, propensity="0"))
    with pytest.raises(DataError, match="expected one <campaign>.csv"):
        read_open_bandit(tmp_path)


@pytest.mark.skipif(not OBD.is_dir(), reason="the shared Open Bandit Dataset sample is not here")
def test_the_shared_sample_reads():
    log = read_open_bandit(OBD / "random" / "men")
    assert log.n_rounds == 10_000 and log.n_actions == 34 and log.len_list == 3
    assert np.allclose(log.propensities, 1 / 34)
