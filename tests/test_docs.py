"""The user documentation stays short, current and linked: README.md, CONTRIBUTING.md and docs/*.md.

The README is for users: at most 150 lines, exactly the two set-up commands, no dated status text
(the board's status is generated into results/LEADERBOARD.md), and every relative link of the
documentation points at a file of the repository.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "benchmark" / "data" / "cards").glob("*.md"))]
# [text](target) and ![alt](target); the target ends at whitespace or ")"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
SETUP = "## Set-up: the two commands"


def relative_links(path: Path) -> list[str]:
    """The link targets of a Markdown file that point into the repository (no URLs, no pure anchors)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # code blocks and code spans hold no links
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= 150, f"README.md has {n} lines, at most 150: move details to docs/"


def test_readme_has_no_session_diary_or_dated_status():
    text = README.read_text()
    for word in ("session", "diary"):
        assert not re.search(rf"\b{word}s?\b", text, re.I), f"README.md mentions {word!r}: it speaks of the project"
    assert not re.search(r"^\s*status\s*\(", text, re.I | re.M), "README.md has a status paragraph: LEADERBOARD.md"
    dates = DATE.findall(text)
    assert not dates, f"README.md holds dated text {dates}: the status belongs in results/LEADERBOARD.md"


def test_readme_names_exactly_the_two_setup_commands():
    text = README.read_text()
    assert SETUP in text, f"README.md lacks the section {SETUP!r}"
    section = text.split(SETUP, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, f"the set-up section of README.md holds {len(blocks)} code blocks, expected 1"
    commands = [line.split("#", 1)[0].strip() for line in blocks[0].splitlines()]
    assert [c for c in commands if c] == ["make bench", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("bench", "test"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile lacks the target {target!r}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    broken = []
    for target in relative_links(doc):
        path = target.split("#", 1)[0]
        if not (doc.parent / path).exists():
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)}: links to missing files {broken}"


def test_link_checker_sees_links(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("[a](docs/a.md) ![p](plots/p.png) [u](https://x.org) [s](#sec) `N[C](C)`\n"
                   "[`b`](b.md#x)\n```\n[c](in/code.md)\n```\n")
    assert relative_links(doc) == ["docs/a.md", "plots/p.png", "b.md#x"]


def test_docs_folder_is_linked_from_the_readme():
    linked = {(ROOT / t.split("#", 1)[0]).resolve() for t in relative_links(README) if t.startswith("docs/")}
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"docs/ pages no README link reaches: {unlinked}"
