"""The code and the docs cite only what a reader of the repository can open.

Comments, docstrings and docs point to a section of a page under ``docs/``
(``docs/protocol.md, "Delivery"``), never to documents or trackers outside the
repository: the shared specification's numbered sections, its file names, the
original projects' numbers, issue numbers. And every ``docs/<page>.md,
"<section>"`` reference names a page and a heading that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("p2sp", "tests", "bench", "docs")
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
THIS = Path(__file__).resolve()

#: What must not be cited, and why, as a reader would see it.
FORBIDDEN = {
    "a numbered section of a document outside the repository": re.compile(r"§"),
    "PROTOCOL.md, not in the repository": re.compile(r"(?<![\w/.-])PROTOCOL\.md"),
    "DESIGN.md, not in the repository": re.compile(r"(?<![\w/.-])DESIGN\.md"),
    "an original project by number": re.compile(r"(?i)\bseeds?\s+0\d\d"),
    "the original projects' folder": re.compile(r"(?i)\bseeds/"),
    "an issue by number": re.compile(r"(?i)\bissues?\s+#?\d+"),
    "a numbered invariant of a document outside the repository": re.compile(
        r"(?i)\binvariants?\s+\d"
    ),
}

#: ``docs/protocol.md, "Delivery"``; the quoted name may run over a line break.
SECTION_REF = re.compile(r'docs/([\w.-]+\.md),\s+"([^"]+)"')


def _files() -> list[Path]:
    found = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if not path.is_file() or path.resolve() == THIS:
                continue
            if SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts):
                continue
            found.append(path)
    return found


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # not a text file


def _headings(page: Path) -> set[str]:
    found, fenced = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced  # a "# comment" in a code block is no heading
        elif line.startswith("#") and not fenced:
            found.add(line.lstrip("#").strip())
    return found


def test_no_reference_outside_the_repository() -> None:
    hits = []
    for path in _files():
        text = _text(path)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), start=1):
            for why, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{n}: {why}: {line.strip()}")
    assert not hits, "references a reader cannot follow:\n" + "\n".join(hits)


def test_section_references_name_existing_headings() -> None:
    headings: dict[str, set[str]] = {}
    bad = []
    for path in _files():
        text = _text(path)
        if text is None:
            continue
        for match in SECTION_REF.finditer(text):
            page, section = match.group(1), match.group(2)
            # A name broken over lines in a comment: drop the "#" that starts the next line.
            section = " ".join(re.sub(r"\n\s*#:?", " ", section).split())
            where = f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
            target = ROOT / "docs" / page
            if not target.is_file():
                bad.append(f"{where}: docs/{page} does not exist")
                continue
            names = headings.setdefault(page, _headings(target))
            if not any(h == section or h.startswith(section + " (") for h in names):
                bad.append(f'{where}: docs/{page} has no heading "{section}"')
    assert not bad, "section references that lead nowhere:\n" + "\n".join(bad)
