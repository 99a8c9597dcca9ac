"""The search endpoint of the JSON API."""

from __future__ import annotations

from flask import Response, request

from kb.access import Access, requires
from kb.api import bp
from kb.api.operation import operation, respond
from kb.searching import service
from kb.searching.schemas import (
    SearchQuery,
    SearchResponseOut,
    search_params,
    validate_search_query,
)


@bp.get("/search")
@requires(Access.READ)
@operation(query=SearchQuery, response=SearchResponseOut, returns="搜索结果", errors=(422,))
def search_campaigns() -> Response:
    """搜索活动 (Search campaigns: keyword, semantic or hybrid)."""
    query = validate_search_query(search_params(request.args))
    return respond(service.response_out(service.search(query)))
