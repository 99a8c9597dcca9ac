"""The search page's state: the query, its errors, the active filters as chips, facets, pages.

The page is a GET form, so its URL is the search: every chip and facet is a link to the same
URL with one value removed or added, and the metric-condition form (metric → 实际值/达成率/较基线
→ comparison → value) is turned into one canonical ``metric_range`` by a redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from kb.searching import conditions
from kb.searching.schemas import SEARCH_LIST_PARAMS, SearchQuery, validate_search_query
from kb.validation import InvalidInputError
from kb.vocab import GOAL_TYPES, STATUSES, field_label
from kb.web.rendering import format_date

# The boxes of the metric-condition form; never part of a search's canonical URL.
METRIC_FORM = ("mf_metric", "mf_field", "mf_op", "mf_value")
# Parameters that are the search's state, not a filter (no chip for them).
_NOT_FILTERS = {"q", "mode", "limit", "offset", "expand", "include_weak", "as_text", *METRIC_FORM}
FACET_LABELS = {
    "industry": "行业",
    "goal_type": "目标类型",
    "status": "状态",
    "audience": "人群",
    "channel": "渠道",
    "reward_type": "奖励类型",
}
# Page numbers shown either side of the current one (and always the first and the last).
PAGER_SPAN = 2

Url = Callable[[MultiDict[str, str]], str]


@dataclass(frozen=True, slots=True)
class Chip:
    """An active filter in words, with the link that removes it."""

    label: str
    remove_url: str
    # Read from the query's words: its × searches those words as text again.
    recognised: bool = False


@dataclass(frozen=True, slots=True)
class FacetValue:
    """One value of a facet: its count, whether it is selected, and the link that toggles it."""

    value: str
    label: str
    count: int
    selected: bool
    url: str


@dataclass(frozen=True, slots=True)
class PageLink:
    """One entry of the pager: a page number (None for a gap "…") and its link."""

    number: int | None
    url: str = ""
    current: bool = False


@dataclass(slots=True)
class SearchPage:
    """What the search template shows."""

    query: SearchQuery
    params: MultiDict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    # The typed text of a metric condition that could not be read, shown again in its box.
    metric_text: str = ""
    # The metric form's boxes as submitted, shown again when they held an error.
    metric_form: dict[str, str] = field(default_factory=dict)
    redirect_to: str | None = None

    @property
    def has_filters(self) -> bool:
        """Whether any filter is set (the filter panel then stays open)."""
        return any(
            value for key, value in self.query.model_dump().items() if key not in _NOT_FILTERS
        )

    @property
    def error_list(self) -> list[tuple[str, str]]:
        """The errors with their fields named in Chinese (the metric form's are shown beside it)."""
        return [
            (field_label(key), message)
            for key, message in self.errors.items()
            if key not in METRIC_FORM
        ]


def build(args: MultiDict[str, str], url: Url) -> SearchPage:
    """Validate the page's parameters; bad ones are left out of the search and named."""
    params = MultiDict(
        [(key, value) for key, value in args.items(multi=True) if key not in METRIC_FORM]
    )
    metric_form = {key: args.get(key, "") for key in METRIC_FORM}
    errors: dict[str, str] = {}
    if metric_form["mf_metric"] or metric_form["mf_value"].strip():
        try:
            condition = conditions.build(
                metric_form["mf_metric"] or _missing_metric(),
                metric_form["mf_field"],
                metric_form["mf_op"],
                metric_form["mf_value"],
            )
        except conditions.ConditionError as exc:
            errors[exc.box] = exc.message
        else:
            params.add("metric_range", condition.code)
            params.pop("offset", None)
            return SearchPage(
                query=SearchQuery(), params=params, redirect_to=url(_canonical(params))
            )
    values = _values(params)
    metric_text = ""
    try:
        query = validate_search_query(values)
    except InvalidInputError as exc:
        errors.update(exc.fields)
        # A bad parameter is left out whole; of the metric conditions, only the bad ones.
        dropped = {key.split(".")[0] for key in exc.fields} - {"metric_range"}
        kept_conditions = []
        for position, text in enumerate(values.get("metric_range", [])):
            if f"metric_range.{position}" in exc.fields:
                metric_text = metric_text or text
            else:
                kept_conditions.append(text)
        cleaned = {k: v for k, v in values.items() if k not in dropped}
        cleaned["metric_range"] = kept_conditions
        query = validate_search_query(cleaned)
        # The URL the chips and facets build on holds only what the search used.
        params = MultiDict(
            [
                (k, v)
                for k, v in params.items(multi=True)
                if k not in dropped and k != "metric_range"
            ]
        )
    else:
        params.setlist("metric_range", [])
    for code in query.metric_range:
        params.add("metric_range", code)
    return SearchPage(
        query=query,
        params=params,
        errors=errors,
        metric_text=metric_text,
        metric_form=metric_form if errors.keys() & set(METRIC_FORM) else {},
    )


def chips(
    page: SearchPage,
    url: Url,
    signal_names: dict[str, str],
    recognised: tuple[conditions.TypedCondition, ...] = (),
) -> list[Chip]:
    """Return every active filter in words, each with the link that removes it alone.

    The conditions read from the query's words come first; removing one keeps the query and
    names the words in ``as_text``, so they are searched as text.
    """
    query = page.query
    found: list[Chip] = []
    for typed in recognised:
        params = MultiDict(page.params)
        params.add("as_text", typed.text)
        params.pop("offset", None)
        label = f"已识别条件：{typed.condition.label}"
        found.append(Chip(label, url(_canonical(params)), recognised=True))

    def without(key: str, value: str | None = None) -> str:
        params = MultiDict(page.params)
        remaining = [v for v in params.getlist(key) if value is not None and v != value]
        params.setlist(key, remaining)
        params.pop("offset", None)
        return url(_canonical(params))

    scalars = {
        "industry": query.industry,
        "goal_type": GOAL_TYPES.get(query.goal_type or "", ""),
        "status": STATUSES.get(query.status or "", ""),
        "department": query.department,
        "business_line": query.business_line,
    }
    for key, shown in scalars.items():
        if shown:
            found.append(Chip(f"{field_label(key)}：{shown}", without(key)))
    for key in ("audience", "channel", "reward_type"):
        for value in getattr(query, key):
            found.append(Chip(f"{field_label(key)}：{value}", without(key, value)))
    if query.date_from:
        found.append(Chip(f"{format_date(query.date_from)} 起", without("date_from")))
    if query.date_to:
        found.append(Chip(f"至 {format_date(query.date_to)}", without("date_to")))
    for code in query.metric_range:
        found.append(Chip(conditions.parse(code).label, without("metric_range", code)))
    if query.missed:
        found.append(Chip("只看未达标", without("missed")))
    for code in query.signal:
        found.append(Chip(f"预警：{signal_names.get(code, code)}", without("signal", code)))
    return found


def facets(
    page: SearchPage, counts: dict[str, dict[str, int]], url: Url
) -> list[tuple[str, list[FacetValue]]]:
    """Return each facet's values with counts, selected state and a link that toggles each."""
    query = page.query
    listed: list[tuple[str, list[FacetValue]]] = []
    for name, values in counts.items():
        if not values:
            continue
        entries = []
        for value, count in values.items():
            if name in SEARCH_LIST_PARAMS:
                selected = value in getattr(query, name)
            else:
                selected = getattr(query, name, None) == value
            params = MultiDict(page.params)
            params.pop("offset", None)
            if selected:
                params.setlist(name, [v for v in params.getlist(name) if v != value])
            elif name in SEARCH_LIST_PARAMS:
                params.add(name, value)
            else:
                params.setlist(name, [value])
            label = GOAL_TYPES.get(value, value) if name == "goal_type" else value
            label = STATUSES.get(value, label) if name == "status" else label
            entries.append(FacetValue(value, label, count, selected, url(_canonical(params))))
        listed.append((FACET_LABELS.get(name, field_label(name)), entries))
    return listed


def pager(page: SearchPage, total: int, url: Url) -> list[PageLink]:
    """Return the page numbers to show (first, last, and PAGER_SPAN around the current one)."""
    limit = page.query.limit
    pages = -(-total // limit) if total else 0
    if pages <= 1:
        return []
    current = page.query.offset // limit + 1
    shown = sorted(
        {1, pages, *range(max(1, current - PAGER_SPAN), min(pages, current + PAGER_SPAN) + 1)}
    )
    links: list[PageLink] = []
    previous = 0
    for number in shown:
        if number - previous > 1:
            links.append(PageLink(None))
        params = MultiDict(page.params)
        params.setlist("offset", [str((number - 1) * limit)] if number > 1 else [])
        links.append(PageLink(number, url(_canonical(params)), number == current))
        previous = number
    return links


def page_url(page: SearchPage, number: int, url: Url) -> str:
    """Return the link to page ``number`` (1-based) of the results."""
    params = MultiDict(page.params)
    params.setlist("offset", [str((number - 1) * page.query.limit)] if number > 1 else [])
    return url(_canonical(params))


def link(page: SearchPage, url: Url, **changes: str) -> str:
    """Return the search's link with some parameters set (back on the first page)."""
    params = MultiDict(page.params)
    params.pop("offset", None)
    for key, value in changes.items():
        params.setlist(key, [value])
    return url(_canonical(params))


def _values(params: MultiDict[str, str]) -> dict[str, Any]:
    # Blank repeats (an empty box beside hidden values) say nothing; dropped before validation so
    # an error's position (metric_range.1) is the position in this list.
    lists = {key: [v for v in params.getlist(key) if v.strip()] for key in SEARCH_LIST_PARAMS}
    return {**params.to_dict(), **lists}


def _canonical(params: MultiDict[str, str]) -> MultiDict[str, str]:
    # Blank boxes say nothing: links stay short and readable.
    return MultiDict([(k, v) for k, v in params.items(multi=True) if v != ""])


def _missing_metric() -> str:
    raise conditions.ConditionError("请先选择指标", "mf_metric")
