"""Above single campaigns: the pages of the portfolio, the lessons library and playbooks.

Their JSON API is in kb/insights/api.py.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from kb.access import Access, requires
from kb.database import form_version
from kb.insights import lessons, playbooks, portfolio, serialize, signals
from kb.insights.schemas import (
    LessonQuery,
    PortfolioQuery,
    resolve_period,
    validate_playbook,
)
from kb.models import Playbook
from kb.validation import InvalidInputError, split_list, validate_as
from kb.web.rendering import conflict_message

bp = Blueprint("insights", __name__)

SEVERITY_LABELS = {"high": "严重", "medium": "注意"}


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {
        "THEME_LABELS": lessons.THEME_LABELS,
        "SIGNAL_LABELS": signals.signal_labels(),
        "SIGNAL_RULES": list(signals.RULES.values()),
        "SEVERITY_LABELS": SEVERITY_LABELS,
        "LESSON_KINDS": lessons.KIND_LABELS,
    }


# ---------------------------------------------------------------------------------------------
# Pages


@bp.get("/portfolio")
@requires(Access.READ)
def portfolio_page() -> str:
    args = request.args.to_dict()
    errors: dict[str, str] = {}
    try:
        query = validate_as(PortfolioQuery, args)
        date_from, date_to = resolve_period(query, date.today())
    except InvalidInputError as exc:
        # Show the page without the bad parameters, and say which ones were ignored and why.
        errors = exc.fields
        bad = set(exc.fields)
        if bad & {"date_from", "date_to"}:
            bad |= {"date_from", "date_to"}  # half a period is not what was asked for
        query = validate_as(PortfolioQuery, {k: v for k, v in args.items() if k not in bad})
        date_from, date_to = resolve_period(query, date.today())
    result = portfolio.build_portfolio(
        date_from, date_to, goal_type=query.goal_type, business_line=query.business_line
    )
    return render_template(
        "insights/portfolio.html",
        portfolio=result,
        data=serialize.portfolio_out(result).model_dump(mode="json"),
        errors=errors,
        args=args,
        this_year=date.today().year,
    )


@bp.get("/lessons")
@requires(Access.READ)
def lessons_page() -> str:
    args = request.args.to_dict()
    errors: dict[str, str] = {}
    try:
        query = validate_as(LessonQuery, args)
    except InvalidInputError as exc:
        errors = exc.fields
        query = validate_as(LessonQuery, {k: v for k, v in args.items() if k not in exc.fields})
    q = query.q or ""
    results = lessons.search_lessons(
        q, theme=query.theme, kind=query.kind, limit=query.limit, offset=query.offset
    )
    return render_template(
        "insights/lessons.html",
        query=query,
        q=q,
        args=args,
        errors=errors,
        results=results,
        # Filtered to one theme, everything found belongs under it (whatever its main theme).
        groups=[(query.theme, results.hits)]
        if query.theme and results.hits
        else lessons.group_by_theme(results.hits),
        playbooks=playbooks.search_playbooks(q, query.theme),
    )


@bp.get("/playbooks")
@requires(Access.READ)
def playbook_index() -> str:
    """打法：every playbook with the campaigns for and against it."""
    theme = request.args.get("theme", "")
    theme = theme if theme in lessons.THEME_LABELS else ""
    return render_template(
        "insights/playbooks.html",
        entries=playbooks.playbook_index(theme or None),
        theme=theme,
    )


@bp.get("/playbooks/campaign-options")
@requires(Access.EDIT)
def playbook_campaign_options() -> Response:
    """Answer the campaigns whose title has the typed words, for the form's campaign picker."""
    q = request.args.get("q", "")[:100]
    return jsonify(
        [{"id": c.id, "label": c.label, "title": c.title} for c in playbooks.campaign_choices(q)]
    )


@bp.route("/playbooks/new", methods=["GET", "POST"])
@requires(Access.EDIT)
def playbook_new() -> ResponseReturnValue:
    if request.method == "GET":
        state = _empty_state()
        theme = request.args.get("theme", "")
        state["theme"] = theme if theme in lessons.THEME_LABELS else ""
        state["supporting_ids"] = _ids_text(request.args.getlist("supporting"))
        state["contradicting_ids"] = _ids_text(request.args.getlist("contradicting"))
        return _render_form(state, {}, None)
    return _save_form(None)


@bp.get("/playbooks/<int:playbook_id>")
@requires(Access.READ)
def playbook_detail(playbook_id: int) -> str:
    playbook = _playbook_or_404(playbook_id)
    return render_template(
        "insights/playbook.html",
        playbook=playbook,
        cited=playbooks.cited_campaigns(playbook),
    )


@bp.route("/playbooks/<int:playbook_id>/edit", methods=["GET", "POST"])
@requires(Access.EDIT)
def playbook_edit(playbook_id: int) -> ResponseReturnValue:
    playbook = _playbook_or_404(playbook_id)
    if request.method == "GET":
        data = playbooks.playbook_input(playbook)
        state = {
            **data,
            "supporting_ids": _ids_text(data["supporting_ids"]),
            "contradicting_ids": _ids_text(data["contradicting_ids"]),
            "version": str(playbook.version),
        }
        return _render_form(state, {}, playbook)
    return _save_form(playbook)


@bp.post("/playbooks/<int:playbook_id>/delete")
@requires(Access.EDIT)
def playbook_delete(playbook_id: int) -> ResponseReturnValue:
    playbook = _playbook_or_404(playbook_id)
    title = playbook.title
    playbooks.delete_playbook(playbook_id)
    flash(f"打法“{title}”已删除。", "success")
    return redirect(url_for("insights.playbook_index"))


def _playbook_or_404(playbook_id: int) -> Playbook:
    try:
        return playbooks.get_playbook(playbook_id)
    except playbooks.PlaybookNotFoundError:
        abort(404)


def _empty_state() -> dict[str, Any]:
    return {
        "title": "",
        "theme": "",
        "body": "",
        "supporting_ids": "",
        "contradicting_ids": "",
        "version": "",
    }


def _ids_text(ids: list[Any]) -> str:
    return "、".join(str(i) for i in ids if str(i).strip())


_ID_TOKEN = re.compile(r"^#?\s*(\d+)$")
# A campaign as the picker writes it: "夜宵节（2024年7月） #12".
_LABELLED_ID = re.compile(r"#\s*(\d+)\s*$")


def _parse_ids(text: str) -> list[Any]:
    """Read "12、#34, 56" or the picker's "夜宵节（2024年7月） #12" as ids; anything else is passed
    on for the schema to refuse."""
    found: list[Any] = []
    for part in split_list(text):
        labelled = _LABELLED_ID.search(part)
        if labelled and not _ID_TOKEN.match(part.split()[0] if part.split() else ""):
            found.append(int(labelled.group(1)))
            continue
        found += [int(m.group(1)) if (m := _ID_TOKEN.match(t)) else t for t in part.split()]
    return found


def _save_form(playbook: Playbook | None) -> ResponseReturnValue:
    state = {key: request.form.get(key, "") for key in _empty_state()}
    for field in ("supporting_ids", "contradicting_ids"):
        # Without script, a campaign picked in the picker arrives as its label: add its id.
        picked = _LABELLED_ID.search(request.form.get(f"{field}_pick", ""))
        if picked:
            state[field] = "、".join(filter(None, (state[field].strip(), picked.group(1))))
    data = {
        "title": state["title"].strip(),
        "theme": state["theme"] or None,
        "body": state["body"],
        "supporting_ids": _parse_ids(state["supporting_ids"]),
        "contradicting_ids": _parse_ids(state["contradicting_ids"]),
    }
    try:
        validated = validate_playbook(data)
        if playbook is None:
            saved = playbooks.create_playbook(validated)
            flash("打法已创建。", "success")
        else:
            expected = form_version(state["version"])
            saved = playbooks.update_playbook(playbook.id, validated, expected_version=expected)
            flash("修改已保存。", "success")
    except InvalidInputError as exc:
        return _render_form(state, exc.fields, playbook, status=422)
    except playbooks.PlaybookConflictError as exc:
        state["version"] = str(exc.current_version)
        message = conflict_message("打法", exc.current_version)
        return _render_form(state, {}, playbook, status=409, conflict=message)
    except playbooks.PlaybookNotFoundError:
        abort(404)
    return redirect(url_for("insights.playbook_detail", playbook_id=saved.id))


def _render_form(
    state: dict[str, Any],
    errors: dict[str, str],
    playbook: Playbook | None,
    *,
    status: int = 200,
    conflict: str | None = None,
) -> ResponseReturnValue:
    chosen = {
        field: playbooks.chosen_campaigns(
            [i for i in _parse_ids(state[field]) if isinstance(i, int)]
        )
        for field in ("supporting_ids", "contradicting_ids")
    }
    body = render_template(
        "insights/playbook_form.html",
        state=state,
        errors=errors,
        playbook=playbook,
        conflict=conflict,
        chosen=chosen,
        choices=playbooks.campaign_choices(),
    )
    return body if status == 200 else (body, status)
