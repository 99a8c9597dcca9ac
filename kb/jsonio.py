"""The app's JSON: Chinese written as is, and no NaN or Infinity, which are not JSON.

Python's ``json`` writes ``float("inf")`` as ``Infinity``, which strict parsers (browsers'
``JSON.parse``, most API clients) refuse, so one such number would break a whole answer. Numbers
that cannot be represented are turned into ``null`` where they are computed; this provider makes
any that slips through a loud error (a logged 500) instead of an answer clients cannot read.
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with ``allow_nan=False`` and Chinese left unescaped."""

    ensure_ascii = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("allow_nan", False)
        return super().dumps(obj, **kwargs)
