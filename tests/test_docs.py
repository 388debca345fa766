"""The docs name every command and link pages that exist."""

import re
from pathlib import Path

from napari_rvae.cli import COMMANDS

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_cli_doc_lists_every_command():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name, *_ in COMMANDS:
        assert f"## `napari-rvae {name}`" in text, f"docs/cli.md lacks {name}: run python docs/scripts/make_cli_doc.py"


def test_doc_links_resolve():
    for page in [DOCS.parent / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
