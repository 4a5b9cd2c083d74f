"""`shopformer report`: one offline HTML file with every section, on bundles with and without task models."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from shopformer.cli import app
from shopformer.report.html import write_report
from shopformer.report.sections import SECTION_TITLES

_NO_TASKS = "Not available: the bundle has no task models"


def _headings(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def test_the_report_is_one_offline_file_with_every_section(report_bundles, tmp_path):
    path = write_report(report_bundles.tasks, tmp_path / "out" / "report.html")
    page = path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page), "a resource outside the file"
    assert "http://" not in page and "https://" not in page and "@import" not in page
    assert re.findall(r"<script", page) == []  # charts are images, not scripts
    assert _headings(page) == list(SECTION_TITLES.values())
    assert "Not available" not in page
    assert page.count('src="data:image/png;base64,') == 7  # funnel, cohorts, RFM, segments, predictions, calibration, anomalies
    # The demo shop's bots and fraudsters are flagged with their reasons; explanations say why in words.
    assert "events per active hour" in page or "apart" in page
    assert page.count("<h3>User ") == 3


def test_a_bundle_without_task_models_says_so_where_it_needs_them(report_bundles, tmp_path):
    out = tmp_path / "plain.html"
    result = CliRunner().invoke(app, ["report", "--bundle", str(report_bundles.plain), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert _headings(page) == list(SECTION_TITLES.values())
    sections = dict(re.findall(r'<section id="(\w+)">(.*?)</section>', page, flags=re.S))
    assert {anchor for anchor, body in sections.items() if _NO_TASKS in body} == {"predictions", "calibration"}
    assert "last 50 events as the bundle keeps them" in sections["overview"]
    assert "<img" in sections["funnel"] and "<img" in sections["segments"]


def test_a_folder_that_is_not_a_bundle_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["report", "--bundle", str(tmp_path), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "error:" in result.output and not (tmp_path / "r.html").exists()
