"""The README stays true and short: its size, its module map, its configuration table and every link in it and
in docs/ are checked against the tree, so a module or setting added without a line in the README fails here."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from logistics.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAPPED_FOLDERS = ("logistics", "carriers", "webhooks", "labels")
# Migration scripts are one per schema version: the map names their folder instead of each file.
VERSIONS = "logistics/storage/migrations/versions/"
README_MAX_BYTES = 15_000  # "15 KB" as wc -c counts it, the stricter reading
# [text](target), not images' or code spans' look-alikes; the target up to a space or the closing bracket.
# One item of a module-map cell: "`pdf.py` PDF" names pdf.py; "`versions/` schema versions" a folder.
MODULE_ITEM = re.compile(r"`([^`]+\.py|[^`]+/)` ")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    assert match is not None, f"README has no '## {heading}' section"
    return match.group(1)


def _first_cells(table_text: str) -> list[str]:
    """The first cell of every body row of the Markdown tables in ``table_text``, backticks removed."""
    cells = []
    for line in table_text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells.append(line.split("|")[1].strip().replace("`", ""))
    return cells[1:] if cells else cells  # the header row


def _module_files() -> list[str]:
    files = []
    for folder in MAPPED_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" in path.parts or not path.read_text().strip():
                continue  # an empty __init__.py only marks a package
            files.append(path.relative_to(ROOT).as_posix())
    return files


def test_readme_is_at_most_15_kb() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; the limit is {README_MAX_BYTES}"


def _mapped_modules() -> list[str]:
    """Every module the README's map names: a row per folder, its cell a list of "`name` what it does" items."""
    names = []
    for line in _section(README.read_text(), "Modules").splitlines():
        if not line.startswith("|") or set(line) <= set("|-: ") or line.startswith("| folder |"):
            continue
        _, folder, modules, _ = (cell.strip() for cell in line.split("|"))
        names += [folder + found.group(1) for item in modules.split("; ") if (found := MODULE_ITEM.match(item))]
    return names


def test_module_table_names_every_module_of_the_libraries_and_the_app() -> None:
    rows = set(_mapped_modules())
    missing = [
        f for f in _module_files() if f not in rows and not (f.startswith(VERSIONS) and VERSIONS in rows)
    ]
    assert not missing, f"modules missing from the README's module table: {missing}"


def test_module_table_names_no_module_that_does_not_exist() -> None:
    rows = _mapped_modules()
    assert rows, "the module table is empty"
    assert [r for r in rows if not (ROOT / r).exists()] == []


@pytest.mark.parametrize("document", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_every_relative_link_points_at_a_file_in_the_repository(document: str) -> None:
    path = README if document == "README.md" else ROOT / "docs" / document
    broken = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # https:, mailto: and anchors within the page
        resolved = (path.parent / target.split("#", 1)[0]).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    assert broken == [], f"{document} links to files that are not in the repository: {broken}"


def test_readme_refers_to_no_file_outside_the_repository() -> None:
    assert "../" not in README.read_text(), "README.md points outside the repository"


def test_configuration_table_lists_every_setting() -> None:
    prefix = Settings.model_config.get("env_prefix", "")
    assert prefix == "LOGISTICS_"
    cells = _first_cells(_section(README.read_text(), "Configuration"))
    documented = {name.strip() for cell in cells for name in re.split(r"[/,]", cell)}
    settings = {name.upper() for name in Settings.model_fields}
    missing = sorted(settings - documented)
    assert missing == [], f"settings missing from the README's configuration table (prefix {prefix}): {missing}"
    unknown = sorted(documented - settings)
    assert unknown == [], f"the README's configuration table names settings that do not exist: {unknown}"


def test_benchmark_report_keeps_its_hand_run_sections_and_history_when_rewritten(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("benchmark_report", ROOT / "benchmarks" / "report.py")
    assert spec is not None and spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    old = tmp_path / "REPORT.md"
    old.write_text(
        "# Benchmark report\n\n## Webhooks\n\n```\n8710/s\n```\n\n"
        "## Console on a big database (hand-run, 2026-12-04)\n\np99 37 ms on SQLite 200,000\n\n## History\n\n"
        "- stop 13: create on PostgreSQL 36–39 % of bare aiohttp\n"
    )
    assert report.kept_parts(old) == [
        "## Console on a big database (hand-run, 2026-12-04)\n\np99 37 ms on SQLite 200,000",
        "",
        "## History\n\n- stop 13: create on PostgreSQL 36–39 % of bare aiohttp",
        "",
    ]
    assert report.kept_parts(tmp_path / "absent.md") == []
