"""Importing does no I/O: no module loads OpenCC's tables or a model when it is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import sys
import ingest.readers, ingest.writers, ingest.columns, ingest.markdown
import kb.campaigns.metrics, kb.campaigns.segments, kb.drafts.collisions, kb.drafts.forecast
import search.normalize
loaded = sorted(m for m in ("opencc", "torch", "sentence_transformers") if m in sys.modules)
print(",".join(loaded))
"""


def test_importing_the_formats_and_catalog_loads_no_opencc_or_model() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_folding_loads_opencc_on_first_use() -> None:
    check = "import sys\nfrom search.normalize import fold\nprint(fold('成交額 ＧＭＶ'), 'opencc' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["成交额", "gmv", "True"]
