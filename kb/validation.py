"""Validate input against a pydantic schema and name each bad field in Chinese.

A leaf besides kb.vocab: every feature's schemas, the importers and the API use it.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kb.vocab import value_label

ModelT = TypeVar("ModelT", bound=BaseModel)
# The largest id (or version) an integer column holds on every supported database: PostgreSQL's
# INTEGER. A bigger one in a URL or a body can name nothing; it must not reach a query (overflow).
MAX_ID = 2**31 - 1


# Teams separate list items with any of these (Chinese and ASCII punctuation, new lines).
_LIST_SEPARATORS = re.compile(r"[,，、;；\n]+")


def split_list(text: str) -> list[str]:
    """Split "新用户、宝妈, 大学生" into items, dropping blanks (form boxes and file cells)."""
    return [item.strip() for item in _LIST_SEPARATORS.split(text or "") if item.strip()]


class InvalidInputError(Exception):
    """Input that failed validation, with one message per offending field (dotted paths)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("invalid input")
        self.fields = fields


def validate_as(model: type[ModelT], data: Any) -> ModelT:
    """Validate raw input against ``model``; raise InvalidInputError naming each bad field."""
    if not isinstance(data, dict):
        raise InvalidInputError({"": "请求体应为 JSON 对象 (expected a JSON object)"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInputError(field_errors(exc)) from None


# A lone UTF-16 surrogate ("\ud800" escaped in JSON) is no character: no UTF-8 encodes it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def reject_unstorable(value: Any) -> Any:
    """Refuse a text (or list of texts) no database can store: NUL, or a lone surrogate.

    PostgreSQL cannot store NUL (SQLite can); neither can encode a surrogate in UTF-8, and a row
    holding one would fail its whole write.
    """
    items = value if isinstance(value, list) else [value]
    texts = [item for item in items if isinstance(item, str)]
    if any("\x00" in text for text in texts):
        raise ValueError("nul_character")
    if any(_SURROGATE.search(text) for text in texts):
        raise ValueError("surrogate_character")
    return value


def storable(text: str) -> str:
    """Return text any database stores, for showing what was refused: ␀ for NUL, � for a surrogate."""
    return _SURROGATE.sub("\ufffd", text.replace("\x00", "\u2400"))


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Turn pydantic errors into ``{"metrics.0.target": "请输入数字"}``, first error per field."""
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        location = [str(part) for part in error["loc"]]
        field = next((part for part in reversed(location) if not part.isdigit()), "")
        message = _message(error["type"], error.get("ctx") or {}, str(error.get("msg", "")), field)
        if message == MESSAGES["empty_draft"]:
            location = ["title"]  # shown where the user starts filling in
        fields.setdefault(".".join(location), message)
    return fields


# How a number and a date may be typed (kb/parsing.py reads them all).
NUMBER_MESSAGE = "请输入数字，如 50万、1.2亿、3,500 或 3.5%"
DATE_MESSAGE = "日期格式应如 2025-12-01、2025/12/1 或 2025年12月1日"
# A message for a person holds Chinese; pydantic's own English ones never reach one.
_CHINESE = re.compile(r"[\u4e00-\u9fff]")

MESSAGES = {
    "missing": "必填",
    "end_before_start": "结束日期不能早于开始日期",
    "not_finite": "请输入有限的数字",
    "nul_character": "含有空字符（NUL，\\x00），请删除后再保存",
    "surrogate_character": "含有无法保存的字符（孤立的 UTF-16 代理项，如 \\ud800），请删除后再保存",
    "empty_draft": "请至少填写活动名称、目标或方案描述中的一项",
    "extra_forbidden": "不认识的字段",
    "string_type": "应为文本",
    "list_type": "应为列表",
    "bool_type": "应为是或否",
    "bool_parsing": "应为是或否",
    "float_type": NUMBER_MESSAGE,
    "float_parsing": NUMBER_MESSAGE,
    "int_type": "请输入整数",
    "int_parsing": "请输入整数",
    "int_from_float": "请输入整数",
    "date_type": DATE_MESSAGE,
    "date_parsing": DATE_MESSAGE,
    "date_from_datetime_parsing": DATE_MESSAGE,
    "date_from_datetime_inexact": DATE_MESSAGE,
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "dict_type": "应为对象",
}


def _message(kind: str, ctx: dict[str, Any], fallback: str, field: str = "") -> str:
    if kind == "value_error":
        reason = str(ctx.get("error", ""))
        return MESSAGES.get(reason, "取值无效")
    if kind in ("string_too_short", "too_short"):
        return "必填" if ctx.get("min_length") == 1 else f"至少 {ctx.get('min_length')} 项"
    if kind == "string_pattern_mismatch":
        return "只能含字母、数字和 : _ -"
    if kind == "string_too_long":
        return f"不能超过 {ctx.get('max_length')} 个字符"
    if kind == "too_long":
        return f"最多 {ctx.get('max_length')} 项"
    if kind == "literal_error":
        # The values by their Chinese names, as the pages show them: 拉新、促活…, not codes.
        codes = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        names = "、".join(value_label(field, code) for code in codes)
        return f"取值须为以下之一：{names}"
    if kind in ("greater_than_equal", "greater_than"):
        return f"不能小于 {_bound(ctx.get('ge', ctx.get('gt')))}"
    if kind in ("less_than_equal", "less_than"):
        return f"不能大于 {_bound(ctx.get('le', ctx.get('lt')))}"
    if kind in MESSAGES:
        return MESSAGES[kind]
    return fallback if _CHINESE.search(fallback) else "取值无效"


def _bound(value: Any) -> str:
    """Write a schema's bound as a person would: 0, not 0.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
