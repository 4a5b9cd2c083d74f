"""Format registry: every name resolves to its reader, unknown names and arguments are explained."""

from __future__ import annotations

import pytest

from shopformer.data.formats import FORMATS, read_dataset
from shopformer.errors import ConfigError

NAMES = {"s3rec", "recbole", "sessions", "taobao", "yoochoose", "online-retail", "otto"}


def test_registry_names():
    assert set(FORMATS) == NAMES


@pytest.mark.parametrize("name", sorted(NAMES - {"online-retail"}))
def test_each_reader_loads(name):
    assert callable(FORMATS[name].load())


def test_unknown_format_lists_the_known_ones():
    with pytest.raises(ConfigError) as caught:
        read_dataset("parquet-dump", path="x")
    assert all(name in str(caught.value) for name in NAMES)


def test_wrong_argument_names_the_expected_ones():
    with pytest.raises(ConfigError, match="edges_path"):
        read_dataset("taobao", edge_file="x")


def test_read_dataset_passes_paths(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("1 10 11\n")
    data = read_dataset("s3rec", events_path=path, name="toy")
    assert data.name == "toy" and len(data.events) == 2 and data.info["format"] == "s3rec"
