"""Keyed pseudonyms: deterministic, key-dependent, chained for rotation, vectorised over columns."""

from __future__ import annotations

import polars as pl
import pytest

from shopformer.data.pseudonym import PREFIX, Pseudonymiser, new_key
from shopformer.errors import ConfigError

K1, K2 = bytes.fromhex(new_key()), bytes.fromhex(new_key())


def test_pseudonyms_are_deterministic_keyed_and_never_the_raw_id():
    one, other = Pseudonymiser([K1]), Pseudonymiser([K2])
    assert one.pseudonym("u17") == one.pseudonym("u17") != other.pseudonym("u17")
    assert one.pseudonym("u17") != one.pseudonym("u18") and one.pseudonym("u17").startswith(PREFIX)
    assert "u17" not in one.pseudonym("u17")


def test_rotation_maps_old_pseudonyms_to_exactly_what_the_longer_chain_gives_raw_ids():
    old, rotated = Pseudonymiser([K1]), Pseudonymiser([K1, K2])
    assert rotated.rekey(old.pseudonym("u17")) == rotated.pseudonym("u17")
    assert rotated.previous().keys == old.keys


def test_frames_are_pseudonymised_column_by_column_nulls_kept():
    keys = Pseudonymiser([K1])
    frame = pl.DataFrame({"user_id": ["a", None, "a", "b"], "item_id": ["x", "y", "z", "w"]})
    out = keys.frame(frame)
    assert out["user_id"].to_list() == [keys.pseudonym("a"), None, keys.pseudonym("a"), keys.pseudonym("b")]
    assert out["item_id"].to_list() == frame["item_id"].to_list()


@pytest.mark.parametrize(("text", "message"), [("", "holds no key"), ("zz\n", "line 1: not a hex key"),
                                              (new_key() + "\nabcd\n", "line 2: the key has 2 bytes")])
def test_bad_key_files_name_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "users.key"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as raised:
        Pseudonymiser.from_file(path)
    assert str(path) in str(raised.value)
