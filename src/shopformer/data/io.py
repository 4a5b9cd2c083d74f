"""Reading event and catalog files (CSV/TSV, Parquet, JSON Lines) into all-string tables.

Values stay strings here so that validation can judge every one of them and quarantine a bad row
instead of failing the whole file or, worse, coercing it silently. Every polars/pyarrow failure is
translated into a `DataError` that names the file and what was expected.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from shopformer.data.delimited import split_fields, split_line
from shopformer.data.mapping import CatalogMapping
from shopformer.data.schema import Catalog
from shopformer.errors import DataError

log = logging.getLogger(__name__)

_CSV_SUFFIXES = {".csv", ".tsv", ".txt", ".tab"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}
_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
_DELIMITERS = (",", ";", "\t", "|")
#: Cell values that mean "no value" in CSV exports (R and pandas write NA / nan).
MISSING_MARKERS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


@dataclass(frozen=True)
class RawTable:
    """A file's rows as strings, with their line numbers, and the lines that had the wrong field count."""

    frame: pl.DataFrame
    ragged: pl.DataFrame
    source: str

    @property
    def columns(self) -> list[str]:
        return [c for c in self.frame.columns if c != "__row__"]

    @property
    def rows_read(self) -> int:
        return self.frame.height + self.ragged.height


def read_table(path: str | Path, *, delimiter: str | None = None, encoding: str = "utf-8") -> RawTable:
    """Read a CSV/TSV, Parquet or JSON Lines file; every column a string, plus `__row__` line numbers."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=str(path))
    if path.is_dir():
        raise DataError("is a folder, not a file", path=str(path), expected="a CSV/TSV, Parquet or JSON Lines file")
    if path.stat().st_size == 0:
        raise DataError("the file is empty", path=str(path), expected="a header line and data rows")
    suffix = path.suffix.lower()
    if suffix in _PARQUET_SUFFIXES:
        return _read_parquet(path)
    if suffix not in _CSV_SUFFIXES | _JSONL_SUFFIXES:
        raise DataError(
            f"unsupported file type '{suffix}'", path=str(path),
            expected="one of " + ", ".join(sorted(_CSV_SUFFIXES | _PARQUET_SUFFIXES | _JSONL_SUFFIXES)),
        )
    text = _decode(path, encoding)
    if suffix in _JSONL_SUFFIXES:
        return _read_jsonl(path, text)
    return _read_delimited(path, text, delimiter)


def _decode(path: Path, encoding: str) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise DataError("looks like binary data, not a text table", path=str(path),
                        expected="CSV/TSV or JSON Lines text (or a .parquet file)")
    try:
        # A byte-order mark (spreadsheet exports add one) is not part of the first column's name.
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"byte {data[exc.start]:#04x} is not valid {encoding} text; if the file comes from a spreadsheet "
            "export, set `encoding: latin-1` (or cp1252) in the config or pass --encoding latin-1",
            path=str(path), row=line,
        ) from None


def string_columns(schema: pl.Schema) -> list[pl.Expr]:
    """Every column as a string; native datetimes as unix seconds so no zone is guessed later.

    Expressions rather than a frame, so that a lazy (streaming) scan converts its columns the same way.
    """
    exprs = []
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Datetime):
            exprs.append(pl.col(name).dt.epoch("s").cast(pl.String))
        elif isinstance(dtype, pl.Date):
            exprs.append((pl.col(name).cast(pl.Int64) * 86_400).cast(pl.String))
        elif dtype == pl.String:
            exprs.append(pl.col(name))
        elif isinstance(dtype, (pl.List, pl.Struct, pl.Array)):
            # Nested values (lists, structs) are kept as their JSON text.
            exprs.append(pl.col(name).map_elements(_to_json, return_dtype=pl.String, skip_nulls=True))
        else:
            exprs.append(pl.col(name).cast(pl.String))
    return exprs


def _to_json(value) -> str:
    return json.dumps(value.to_list() if hasattr(value, "to_list") else value)


def _no_ragged() -> pl.DataFrame:
    return pl.DataFrame(schema={"__row__": pl.Int64, "__line__": pl.String})


def _read_parquet(path: Path) -> RawTable:
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several unrelated types for a damaged file
        raise DataError(f"cannot be read as Parquet ({type(exc).__name__})", path=str(path),
                        expected="a valid Parquet file") from None
    if frame.height == 0:
        raise DataError("has no data rows", path=str(path))
    frame = frame.select(string_columns(frame.schema)).with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias("__row__"))
    return RawTable(frame, _no_ragged(), str(path))


def _read_jsonl(path: Path, text: str) -> RawTable:
    lines = text.splitlines()
    records, rows = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"is not valid JSON: {exc.msg}", path=str(path), row=number,
                            expected="one JSON object per line") from None
        if not isinstance(record, dict):
            raise DataError("is not a JSON object", path=str(path), row=number, expected="one JSON object per line")
        records.append({k: None if v is None else (v if isinstance(v, str) else json.dumps(v)) for k, v in record.items()})
        rows.append(number)
    if not records:
        raise DataError("has no data rows", path=str(path))
    columns = list(dict.fromkeys(k for record in records for k in record))
    frame = pl.DataFrame(records, schema={c: pl.String for c in columns}).with_columns(pl.Series("__row__", rows, pl.Int64))
    return RawTable(frame, _no_ragged(), str(path))


def _split_header(header: str, delimiter: str) -> list[str]:
    return [name.strip() for name in split_line(header, delimiter)]


def _sniff_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in _DELIMITERS}
    return max(counts, key=counts.get) if max(counts.values()) > 0 else ","


def _read_delimited(path: Path, text: str, delimiter: str | None) -> RawTable:
    text = text.rstrip("\r\n")
    lines = pl.Series("__line__", [text], pl.String).str.split("\n").explode().str.strip_suffix("\r")
    table = pl.DataFrame([lines]).with_columns(pl.int_range(1, len(lines) + 1, dtype=pl.Int64).alias("__row__"))
    header = table["__line__"][0]
    delimiter = delimiter or _sniff_delimiter(header)
    columns = _split_header(header, delimiter)
    if len(set(columns)) != len(columns) or "" in columns:
        raise DataError("the header has empty or repeated column names", path=str(path), row=1, found=header[:200])
    # Blank lines carry no data (a trailing newline makes one); they are not rows.
    body = table.slice(1).filter(pl.col("__line__").str.strip_chars() != "")
    if body.height == 0:
        raise DataError("has a header but no data rows", path=str(path), row=1)
    # Polars' reader stops the whole file at a stray or unterminated quote, so text with quotes is
    # split by the quote-aware tokenizer in `delimited`; text without quotes splits on the delimiter.
    quoted = '"' in text
    values = split_fields(pl.col("__line__"), delimiter) if quoted else pl.col("__line__").str.split(delimiter)
    body = body.with_columns(values.alias("__values__"))
    body = body.with_columns(pl.col("__values__").list.len().alias("__fields__"))
    good = body.filter(pl.col("__fields__") == len(columns))
    ragged = body.filter(pl.col("__fields__") != len(columns)).select("__row__", "__line__")
    if not quoted and ragged.height == 0 and body.height == table.height - 1:
        # Common case, every line well formed and unquoted: parse the text as it is (fastest).
        frame = _parse_text(path, text, columns, delimiter)
    else:
        frame = good.select(pl.col("__values__").list.get(i).alias(name) for i, name in enumerate(columns))
    frame = frame.with_columns(pl.all().str.strip_chars().replace(MISSING_MARKERS, None))
    return RawTable(frame.with_columns(good["__row__"]), ragged, str(path))


def _parse_text(path: Path, text: str, columns: list[str], delimiter: str) -> pl.DataFrame:
    try:
        return pl.read_csv(
            text.encode(), has_header=False, skip_rows=1, new_columns=columns,
            separator=delimiter, infer_schema=False, quote_char=None,
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot be parsed as a '{delimiter}'-separated table: {exc}", path=str(path)) from None


def check_columns(raw: RawTable, wanted: dict[str, str]) -> None:
    """Stop with one clear error when a mapped column is not in the file; hint at a wrong delimiter."""
    missing = {field: col for field, col in wanted.items() if col not in raw.columns}
    if not missing:
        return
    field, col = next(iter(missing.items()))
    hint = ""
    if len(raw.columns) == 1:
        seen = [d for d in _DELIMITERS if d in raw.columns[0]]
        if seen:
            shown = "\\t" if seen[0] == "\t" else seen[0]
            hint = f"; the header looks '{shown}'-separated: pass --delimiter '{shown}' (or `delimiter:` in the config)"
    raise DataError(
        f"the {field.removesuffix('_col')} column '{col}' is missing; the file has columns "
        f"{', '.join(repr(c) for c in raw.columns)}{hint}. Map yours with --{field.replace('_', '-')} or the config",
        path=raw.source, column=col,
    )


def load_catalog(path: str | Path, mapping: CatalogMapping | None = None) -> Catalog:
    """Read a catalog file: mapped columns renamed to the contract, price as a number, others kept."""
    mapping = mapping or CatalogMapping()
    raw = read_table(path, delimiter=mapping.delimiter, encoding=mapping.encoding)
    check_columns(raw, {"item_col": mapping.item_col})
    renames = {
        getattr(mapping, f"{field}_col"): field
        for field in ("item", "title", "description", "category", "brand", "price")
        if getattr(mapping, f"{field}_col") in raw.columns
    }
    renames[mapping.item_col] = "item_id"
    frame = raw.frame.drop("__row__").rename(renames)
    if "price" in frame.columns:
        frame = frame.with_columns(pl.col("price").cast(pl.Float64, strict=False))
    kept = frame.filter(pl.col("item_id").is_not_null()).unique("item_id", keep="first", maintain_order=True)
    if kept.height < frame.height:
        # Items are looked up by id: rows without one, or repeating one, cannot be used twice.
        log.warning("%s: %d catalog rows without an item id or repeating one were skipped (first kept)",
                    path, frame.height - kept.height)
    return Catalog(kept)
