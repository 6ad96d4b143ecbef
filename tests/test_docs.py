"""The README and docs/ as a reader meets them: every link resolves, and every number a paragraph quotes
next to a benchmark results file is in that file (so a figure cannot go stale unnoticed)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RESULTS = re.compile(r"(?<![\w/])(?:benchmarks/)?results/[\w./-]+\.(?:md|json)")
NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.])")  # decimals: the measured figures (not dates, not counts)


def paragraphs(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks quote commands, not results
    # a paragraph, one item of a list, or one table row: each cites its own sources
    return [block for block in re.split(r"\n\s*\n|\n(?=- |\d+\. |\|)", text) if block.strip()]


def quoted_in(number: str, figures: set[str]) -> bool:
    """``number`` is one of ``figures`` as written, or one rounded to ``number``'s decimals."""
    decimals = len(number.split(".")[1])
    half = 0.5 * 10.0**-decimals * (1 + 1e-9)  # 0.245 may be quoted as 0.25 (or 0.24)
    return any(abs(float(figure) - float(number)) <= half for figure in figures)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_resolves(page):
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
        if "://" not in target:
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_numbers_quoted_beside_a_results_file_are_in_it(page):
    for block in paragraphs(page):
        sources = sorted(set(RESULTS.findall(block)))
        if not sources:
            continue
        # a path relative to the page (benchmarks/README.md's `results/...`), or to the repository
        files = [folder / source for source in sources for folder in (page.parent, ROOT)]
        text = " ".join(path.read_text() for path in files if path.is_file())
        assert text, f"{page.name} cites {sources}, none of which exists"
        found = set(NUMBER.findall(text))
        missing = [n for n in NUMBER.findall(block) if not quoted_in(n, found)]
        assert not missing, f"{page.name}: {missing} quoted beside {sources} but not in them:\n{block[:300]}"


def test_the_command_line_page_names_every_problem():
    from maxent_gan.models.problems import PROBLEMS

    text = (ROOT / "docs" / "cli.md").read_text()
    assert [name for name in PROBLEMS if f"`{name}`" not in text] == []
