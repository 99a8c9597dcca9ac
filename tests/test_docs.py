"""The README documents what a user needs: the two commands and every setting; the import doc every format."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.readers import REGISTRY, FileFormat
from kb.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
IMPORTING = (ROOT / "docs" / "importing.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_readme_names_every_setting(name: str) -> None:
    assert f"`KB_{name}`" in README


def test_readme_opens_with_the_two_commands() -> None:
    head = README[: README.index("## Running the app")]
    assert "make run" in head
    assert "make test" in head


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in script


@pytest.mark.parametrize("spec", list(REGISTRY.values()), ids=list(REGISTRY))
def test_importing_doc_lists_every_registered_format(spec: FileFormat) -> None:
    head = f"| `{spec.name}` | {spec.label} |"
    row = next((line for line in IMPORTING.splitlines() if line.startswith(head)), None)
    assert row is not None, f"docs/importing.md has no row for format {spec.name}"
    extensions = row.split("|")[3]
    assert sorted(extensions.replace("`", "").split()) == sorted(spec.extensions)
