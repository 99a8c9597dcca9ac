"""The draft endpoints of the JSON API: similar cases, collisions and forecast, and feedback."""

from __future__ import annotations

from flask import Response, request

from kb.access import Access, requires
from kb.api import bp
from kb.api.operation import operation, respond
from kb.campaigns import services
from kb.campaigns.schemas import (
    DraftIn,
    FeedbackIn,
    LimitQuery,
    validate_draft,
    validate_feedback,
)
from kb.drafts import analysis
from kb.drafts.schemas import DraftAnalysisOut
from kb.errors import json_body
from kb.validation import validate_as


@bp.post("/similar")
@requires(Access.READ)
@operation(body=DraftIn, response=DraftAnalysisOut, returns="草案分析", errors=(400, 413, 415, 422))
def similar_for_draft() -> Response:
    """草案的相似案例、冲突与推演 (Similar cases, collisions, forecast)."""
    draft = validate_draft(json_body())
    return respond(analysis.analysis_out(analysis.analyze_draft(draft)))


@bp.get("/campaigns/<int:campaign_id>/similar")
@requires(Access.READ)
@operation(query=LimitQuery, response=DraftAnalysisOut, returns="分析", errors=(404, 422))
def similar_for_campaign(campaign_id: int) -> Response:
    """已有活动的相似案例、冲突与推演."""
    campaign = services.get_campaign(campaign_id)
    limit = validate_as(LimitQuery, request.args.to_dict()).limit
    draft = analysis.draft_from_campaign(campaign, limit=limit)
    return respond(analysis.analysis_out(analysis.analyze_draft(draft, exclude_id=campaign.id)))


@bp.post("/similar/feedback")
@requires(Access.EDIT)
@operation(body=FeedbackIn, status=204, returns="已记录", errors=(400, 404, 415, 422))
def similar_feedback() -> tuple[str, int]:
    """标记某个相似案例对该草案无用（或恢复）."""
    feedback = validate_feedback(json_body())
    services.get_campaign(feedback.campaign_id)
    analysis.mark_not_useful(feedback.draft_key, feedback.campaign_id, useful=feedback.useful)
    return "", 204
