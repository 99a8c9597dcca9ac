"""The search query schema: text, mode, paging and filters, from the search page or the API."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from werkzeug.datastructures import MultiDict

from kb.campaigns.schemas import ListItem
from kb.insights.signals import SignalCode, signal_codes
from kb.validation import validate_as
from kb.vocab import GoalType, SearchMode, Status

# "roi.actual>=2", "key.attain<80": a catalog key (or "key", the campaign's key metric), a
# field, a comparison and a number.
METRIC_RANGE = re.compile(r"^([a-z0-9_]+)\.(actual|attain|lift)(>=|<=|>|<)(-?\d+(?:\.\d+)?)$")


class SearchQuery(BaseModel):
    """A search: text, mode, paging and filters, from the search page or the API."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    q: Annotated[str, Field(max_length=500)] = ""
    mode: SearchMode = "hybrid"
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=10_000)] = 0
    industry: Annotated[str | None, Field(max_length=50)] = None
    goal_type: GoalType | None = None
    status: Status | None = None
    department: Annotated[str | None, Field(max_length=100)] = None
    business_line: Annotated[str | None, Field(max_length=100)] = None
    audience: list[ListItem] = []
    channel: list[ListItem] = []
    reward_type: list[ListItem] = []
    date_from: date | None = None
    date_to: date | None = None
    metric_range: list[Annotated[str, Field(pattern=METRIC_RANGE.pattern)]] = []
    missed: bool | None = None
    signal: list[SignalCode] = []
    # False: search the words as typed, without the terms concept cues add (search/concepts.py).
    expand: bool = True

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any, info: ValidationInfo) -> Any:
        # An empty box in the search form means "any"; an empty query means "list everything".
        if isinstance(value, list):
            return [v for v in value if v != ""]
        if value == "" and info.field_name == "expand":
            return True  # no choice made: the default
        return None if value == "" and info.field_name != "q" else value

    @field_validator("signal")
    @classmethod
    def _registered_signal(cls, codes: list[SignalCode]) -> list[SignalCode]:
        # The codes come from the signal registry, so a newly registered rule is a filter at once.
        known = signal_codes()
        if any(code not in known for code in codes):
            expected = " or ".join(f"'{code}'" for code in known)
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": expected}
            )
        return codes


# Search parameters that may repeat in a query string (?audience=宝妈&audience=新用户).
SEARCH_LIST_PARAMS = ("audience", "channel", "reward_type", "metric_range", "signal")


def search_params(args: MultiDict[str, str]) -> dict[str, Any]:
    """Return query-string parameters with the repeatable ones as lists."""
    return {**args.to_dict(), **{key: args.getlist(key) for key in SEARCH_LIST_PARAMS}}


def validate_search_query(args: dict[str, Any]) -> SearchQuery:
    """Validate search parameters from a query string."""
    return validate_as(SearchQuery, args)
