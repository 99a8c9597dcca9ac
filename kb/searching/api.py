"""The search endpoint of the JSON API."""

from __future__ import annotations

from flask import Response, request

from kb.access import Access, allowed, requires
from kb.api import bp
from kb.api.operation import operation, respond
from kb.searching import service
from kb.searching.schemas import (
    SearchQuery,
    SearchResponseOut,
    search_params,
    validate_search_query,
)
from kb.searching.status import IndexStatusOut, index_status


@bp.get("/search")
@requires(Access.READ)
@operation(query=SearchQuery, response=SearchResponseOut, returns="搜索结果", errors=(422,))
def search_campaigns() -> Response:
    """搜索活动 (Search campaigns: keyword, semantic or hybrid)."""
    query = validate_search_query(search_params(request.args))
    return respond(service.response_out(service.search(query, fold=False)))  # no fold in the API


@bp.get("/index/status")
@requires(Access.READ)
@operation(response=IndexStatusOut, returns="本主机的索引进度")
def get_index_status() -> Response:
    """索引进度 (How far this host's search indexes are behind the database).

    写入的应答带 index_seq（响应头 Index-Seq）：keyword_seq ≥ index_seq 时关键词搜索已能找到它，
    vector_seq ≥ index_seq 时按语义也能找到。各主机的进度（hosts）与最近一次错误（last_error）
    只返回给管理员（登录或管理员令牌）；其他人得到序号、积压与计数。
    """
    return respond(index_status(admin=allowed(Access.ADMIN)), exclude_unset=True)
