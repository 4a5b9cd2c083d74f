"""Splitting delimited text lines into fields with Polars expressions (vectorised, no Python loop).

Polars' CSV reader stops the whole file at the first stray quote (`12" vinyl`) or unterminated
quoted field, so lines that contain quotes are split here instead, with RFC 4180 rules applied
per line: a field is quoted only when it starts with a quote, `""` inside it is one quote, a
quote inside an unquoted field is an ordinary character, and a quote that never closes runs to
the end of its line (so that line gets the wrong number of fields and is quarantined, instead of
swallowing the rest of the file).
"""

from __future__ import annotations

import re

import polars as pl


def split_fields(line: pl.Expr, delimiter: str) -> pl.Expr:
    """Each line's fields as a list of strings, with quotes removed from quoted fields."""
    d = re.escape(delimiter)
    closed = f'"(?:[^"]|"")*"[^{d}]*'
    unterminated = '"(?:[^"]|"")*$'
    plain = f"[^{d}]*"
    # With a delimiter in front of the line every field is one non-empty match (delimiter +
    # content), so empty fields and a leading empty field are counted like any other.
    pieces = (pl.lit(delimiter) + line).str.extract_all(f"{d}(?:{closed}|{unterminated}|{plain})")
    field = pl.element().str.slice(1)
    unquoted = (
        pl.when(field.str.contains(r'^"(?s:.*)"$'))
        .then(field.str.slice(1, field.str.len_chars() - 2).str.replace_all('""', '"', literal=True))
        .otherwise(field)
    )
    return pieces.list.eval(unquoted).name.keep()


def split_line(line: str, delimiter: str) -> list[str]:
    """One line's fields (the header), by the same rules as `split_fields`."""
    return pl.DataFrame({"line": [line]}).select(split_fields(pl.col("line"), delimiter)).item().to_list()
