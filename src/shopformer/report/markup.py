"""HTML building blocks of the report: a section, a table from a polars frame, the page around them.

Every piece of text from the data goes through `html.escape`: item titles and user ids are the
shop's data, not markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any

import polars as pl

__all__ = ["Section", "page", "paragraph", "table"]

#: The page's only style sheet, inline (the report is one file that opens offline).
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #f6f7f9; }
header { background: #1f2a44; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; opacity: 0.8; font-size: 13px; }
nav { padding: 8px 32px; background: white; border-bottom: 1px solid #dde; font-size: 13px; }
nav a { margin-right: 14px; color: #2b5cab; text-decoration: none; }
main { padding: 12px 32px 40px; max-width: 1150px; }
section { background: white; border: 1px solid #dde; border-radius: 6px; padding: 14px 20px; margin: 16px 0; }
section h2 { margin: 0 0 8px; font-size: 18px; }
section h3 { margin: 14px 0 4px; font-size: 14px; }
ul.descriptions { font-size: 13px; padding-left: 18px; }
p { font-size: 14px; }
p.lead { color: #555; font-size: 13px; margin: 4px 0 10px; }
p.missing { color: #8a5a00; background: #fff6e0; padding: 8px 12px; border-radius: 4px; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e4e6ea; padding: 3px 8px; text-align: right; }
th { background: #f0f2f5; }
td.text, th.text { text-align: left; }
img.chart { max-width: 100%; margin: 6px 12px 6px 0; vertical-align: top; }
.figures { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; font-size: 13px; }
dl.facts dt { color: #666; }
dl.facts dd { margin: 0; }
"""


@dataclass(frozen=True)
class Section:
    """One part of the page: its anchor, heading and body (HTML), or why its data is missing."""

    anchor: str
    title: str
    body: str = ""
    missing: str | None = None

    def render(self) -> str:
        content = self.body if self.missing is None else f'<p class="missing">Not available: {escape(self.missing)}</p>'
        return f'<section id="{self.anchor}">\n<h2>{escape(self.title)}</h2>\n{content}\n</section>'


def paragraph(text: str) -> str:
    """An explanatory line under a heading (plain text)."""
    return f'<p class="lead">{escape(text)}</p>'


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return escape(", ".join(_plain(v) for v in value))
    return escape(str(value))


def _plain(value: Any) -> str:
    """A list entry: `{name, share}` structs as "name 40%", anything else as text."""
    if isinstance(value, dict) and {"name", "share"} <= value.keys():
        return f"{value['name']} {value['share']:.0%}"
    return str(value)


def table(frame: pl.DataFrame, *, max_rows: int = 50) -> str:
    """A frame as an HTML table (numbers right-aligned, text left), at most `max_rows` rows."""
    text_columns = {name for name, dtype in frame.schema.items() if dtype in (pl.String, pl.Categorical) or dtype == pl.List}
    head = "".join(f'<th class="{"text" if c in text_columns else ""}">{escape(c)}</th>' for c in frame.columns)
    rows = []
    for row in frame.head(max_rows).iter_rows():
        cells = "".join(f'<td class="{"text" if c in text_columns else ""}">{_cell(v)}</td>' for c, v in zip(frame.columns, row))
        rows.append(f"<tr>{cells}</tr>")
    more = f'<p class="lead">… {frame.height - max_rows:,} more rows</p>' if frame.height > max_rows else ""
    return f"<table>\n<tr>{head}</tr>\n" + "\n".join(rows) + "\n</table>" + more


def page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole document: header, a link per section, the sections; no external resource."""
    links = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in sections)
    body = "\n".join(s.render() for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>\n"
            f"<nav>{links}</nav>\n<main>\n{body}\n</main>\n</body>\n</html>\n")
