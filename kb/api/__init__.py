"""The JSON API under /api/v1: one blueprint, one contract.

Each feature adds its endpoints to ``bp`` in its own ``api.py`` (kb/campaigns/api.py,
kb/searching/api.py, …), each declared with ``@operation`` (kb/api/operation.py); the app
factory imports those modules before it registers ``bp``. The OpenAPI document served here is
generated from those declarations (kb/api/openapi.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from kb.access import Access, requires
from kb.api.openapi import build_document
from kb.api.operation import operation
from kb.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# API clients authenticate per request, not with a browser session: CSRF does not apply.
csrf.exempt(bp)


@bp.get("/openapi.json")
@requires(Access.PUBLIC)
@operation(response=dict[str, Any], returns="OpenAPI 文档", operation_id="openapi")
def openapi_document() -> Response:
    """本文档 (This document)."""
    return jsonify(build_document(current_app))
