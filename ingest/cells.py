"""Cell values: formula neutralization, numbers, dates, labels and the text forms of nested fields.

A spreadsheet cell holds text; a campaign holds lists, rewards, metrics and hypotheses. Each
nested field has a friendly one-per-line text form that people write and read
(``满减券：满 199 减 40（可叠加）``) and JSON as the exact fallback: the exporters write the
friendly form only when reading it back gives exactly the same value (see ``encode``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from kb import parsing
from kb.validation import split_list
from kb.vocab import DOCUMENT_KINDS, GOAL_TYPES, HYPOTHESIS_RESULTS, ROW_FIELD_LABELS, STATUSES

# A cell starting with one of these is run as a formula by spreadsheet programs (ASVS 5.0 1.2.10).
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "\x00")
_PLAIN_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def neutralize(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would run as a formula; plain numbers stay numbers.

    Text already starting with ``'`` before a dangerous character (or another ``'``) is
    prefixed too, so ``unneutralize`` restores every value exactly.
    """
    if _PLAIN_NUMBER.match(text):
        return text
    if text.startswith(_DANGEROUS) or (text.startswith("'") and text[1:2] in (*_DANGEROUS, "'")):
        return "'" + text
    return text


def unneutralize(text: str) -> str:
    """Strip the ``'`` that ``neutralize`` (or another careful exporter) put before a formula."""
    if text.startswith("'") and text[1:2] and text[1:2] in (*_DANGEROUS, "'"):
        return text[1:]
    return text


# Blank cells, and numbers as teams type them: one reader for the whole app (kb/parsing.py); a
# cell adds only the ``'`` a careful exporter put before a formula.
_BLANKS = parsing.BLANKS


def parse_number(value: Any, *, scaled: bool = False) -> Any:
    """Return a float for "1,200" "12.5%" "1:4.2" (and "35万" when ``scaled``), None for blanks.

    Text that is not a number is returned unchanged, so the schema reports "请输入数字" for it.
    """
    if isinstance(value, str):
        value = unneutralize(value.strip())
    return parsing.parse_number(value, scaled=scaled)


# What a metric's three values are called in messages: "GMV 实际值 “abc” 无法识别为数字".
VALUE_LABELS = {"baseline": "基线值", "target": "目标值", "actual": "实际值"}


def read_number(value: Any, label: str, warnings: list[str] | None, *, scaled: bool = False) -> Any:
    """Parse a number as ``parse_number`` does; text that is none is blanked with a warning.

    An importer keeps the rest of the row rather than losing it to one unreadable value, and
    says which value it left empty (``warnings`` gets "GMV 实际值 “abc” 无法识别为数字，已留空").
    Without ``warnings`` the text passes through, for the schema to report.
    """
    number = parse_number(value, scaled=scaled)
    if warnings is None or not isinstance(number, str):
        return number
    warnings.append(f"{label} “{_quoted(number)}” 无法识别为数字，已留空")
    return None


def _quoted(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


_EXCEL_EPOCH = date(1899, 12, 30)


def parse_date(value: Any) -> Any:
    """Return an ISO date for 2024-03-01, 2024/3/1, 2024.3.1, 2024年3月1日, 20240301 or a date.

    An Excel serial day number (45352) is read as a date too. Anything else is returned as it was,
    so the schema reports what is wrong with it (a missing year, 2024-02-30).
    """
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 20_000 < value < 80_000:
            return (_EXCEL_EPOCH + timedelta(days=int(value))).isoformat()
        return str(value)
    if isinstance(value, str):
        value = unneutralize(value.strip())
    return parsing.parse_date(value)


def _label_index(labels: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    index = {key.lower(): key for key in labels}
    index.update({label.lower(): key for key, label in labels.items()})
    index.update({alias.lower(): key for alias, key in extra.items()})
    return index


_GOAL_TYPES = _label_index(
    GOAL_TYPES,
    {
        "获客": "acquisition", "新客": "acquisition", "拉新获客": "acquisition",
        "活跃": "activation", "激活": "activation",
        "唤醒": "reactivation", "回流": "reactivation", "召回唤醒": "reactivation",
        "成交": "gmv", "销售": "gmv", "销售额": "gmv", "成交额": "gmv",
        "品牌曝光": "brand", "曝光": "brand", "品宣": "brand",
        "分享裂变": "referral", "社交裂变": "referral",
    },
)  # fmt: skip
_STATUSES = _label_index(
    STATUSES,
    {
        "计划": "planned", "未开始": "planned", "筹备中": "planned", "待上线": "planned",
        "进行": "running", "上线中": "running", "执行中": "running",
        "完成": "completed", "已结束": "completed", "结束": "completed", "已完结": "completed",
        "取消": "cancelled", "已终止": "cancelled", "canceled": "cancelled",
    },
)  # fmt: skip
_RESULTS = _label_index(
    HYPOTHESIS_RESULTS,
    {
        "验证": "validated", "成立": "validated", "通过": "validated", "true": "validated",
        "推翻": "refuted", "不成立": "refuted", "未通过": "refuted", "false": "refuted",
        "待定": "inconclusive", "未定": "inconclusive", "不确定": "inconclusive",
    },
)  # fmt: skip
_KINDS = _label_index(DOCUMENT_KINDS, {"汇报": "deck", "ppt": "deck", "方案文档": "plan"})


def _lookup(index: dict[str, str], value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = unneutralize(value.strip())
    return index.get(text.lower(), text)


def goal_type(value: Any) -> Any:
    """Map 拉新 / Acquisition / acquisition to ``acquisition``; unknown text passes through."""
    return _lookup(_GOAL_TYPES, value)


def status(value: Any) -> Any:
    """Map 已完成 / Completed / completed to ``completed``; unknown text passes through."""
    return _lookup(_STATUSES, value)


def hypothesis_result(value: Any) -> Any:
    """Map 已验证 / 成立 / validated to ``validated``; unknown text passes through."""
    return _lookup(_RESULTS, value)


def document_kind(value: Any) -> Any:
    """Map 策略 / strategy to ``strategy``; unknown text passes through."""
    return _lookup(_KINDS, value)


_TRUE = {"是", "true", "yes", "y", "1", "可叠加", "叠加", "stackable", "✓", "√"}
_FALSE = {"否", "false", "no", "n", "0", "不可叠加", "不叠加", "", "✗", "×"}


def parse_bool(value: Any) -> Any:
    """Return True for 是/yes/1/可叠加 and False for 否/no/0; anything else passes through."""
    if isinstance(value, bool) or value is None:
        return bool(value)
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return value


def format_number(value: float) -> str:
    """Write a number so that float() reads back exactly the same value: 820, 12.5, 1e-07."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# ---- text forms of nested fields ---------------------------------------------------------------

_LINES = re.compile(r"\r\n|\r|\n")
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.、)])\s+")
_STACK_MARK = re.compile(r"\s*[(（]\s*(可叠加|不可叠加|stackable|not stackable)\s*[)）]\s*$", re.I)
_METRIC_HEAD = re.compile(
    r"^(?P<name>[^:：]+?)\s*(?:[(（](?P<unit>[^()（）]*)[)）])?\s*[:：]\s*(?P<rest>.*)$"
)
# A value word before something that starts like a number ("目标 1.2亿", "实际：-3%", "基线 ¥50万").
_METRIC_VALUE = re.compile(
    r"(?P<part>基线|基准|目标|实际|baseline|target|actual)\s*[:：=]?\s*"
    r"(?=[-+]?[¥￥$]?[\d０-９])",
    re.IGNORECASE,
)
# What ends a value: the next part's separator (Chinese comma or semicolons; an ASCII comma or a
# space may sit inside a number, "1,234" "1 234") or the start of the next part.
_VALUE_END = re.compile(r"[，;；、]")
# A number and its scale or unit, read when a note follows it: "1130.5（目标未达成）".
_LEADING_AMOUNT = re.compile(
    r"^[-+]?[¥￥$]?[\d.,]*\d(?:[eE][-+]?\d+)?\s*(?:万元|亿元|千元|百万|万|亿|千|k|w|元|%|倍)?",
    re.IGNORECASE,
)
# A value word followed by anything: finds what _METRIC_VALUE skipped because it is no number.
_METRIC_ANY_VALUE = re.compile(
    r"(?P<part>基线|基准|目标|实际|baseline|target|actual)\s*[:：=]?\s*(?P<value>[^，,;；\s]*)",
    re.IGNORECASE,
)
_VALUE_PARTS = ("baseline", "target", "actual")
_PARTS = {"基线": "baseline", "基准": "baseline", "目标": "target", "实际": "actual"}
# The key metric's mark in the friendly form: "【主要指标】成交额（万元）：目标 1000，实际 1130".
KEY_MARK = "【主要指标】"
_KEY_MARK = re.compile(r"^\s*[【\[]\s*主要指标\s*[】\]]\s*")
_RESULT_HEAD = re.compile(r"^[\[【](?P<label>[^\]】]{1,12})[\]】]\s*(?P<rest>.*)$", re.S)
_EVIDENCE = re.compile(r"^(?P<statement>.*?)\s*[(（]依据[:：]\s*(?P<evidence>.*)[)）]$", re.S)
DEFAULT_DOCUMENT_TITLE = "策略文档"


def _items(text: str) -> list[str]:
    return [_BULLET.sub("", line).strip() for line in _LINES.split(text) if line.strip()]


def _json_list(text: str) -> list[Any] | None:
    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def parse_list(text: str) -> list[Any]:
    """Read a list cell: a JSON array, or items separated by ; 、 , or new lines."""
    found = _json_list(text)
    return found if found is not None else split_list(text)


def parse_rewards(text: str) -> list[Any]:
    """Read "满减券：满 199 减 40（可叠加）" lines (or ; separated), or a JSON array."""
    found = _json_list(text)
    if found is not None:
        return found
    rewards = []
    for line in (item for chunk in _items(text) for item in re.split(r"[;；]", chunk)):
        if not line.strip():
            continue
        stackable = False
        mark = _STACK_MARK.search(line)
        if mark:
            stackable = mark[1].lower() in ("可叠加", "stackable")
            line = line[: mark.start()]
        parts = re.match(r"^(.*?)[:：](.*)$", line, re.S)
        kind, detail = (parts[1], parts[2]) if parts else (line, "")
        rewards.append({"type": kind.strip(), "detail": detail.strip(), "stackable": stackable})
    return rewards


def parse_metrics(text: str, warnings: list[str] | None = None) -> list[Any]:
    """Read "成交额（万元）：基线 820，目标 1000，实际 1130.5" lines, or a JSON array.

    A value that is no number ("实际 abc") is left empty, with a warning in ``warnings``.
    """
    found = _json_list(text)
    if found is not None:
        return found
    metrics = []
    for item in _items(text):
        mark = _KEY_MARK.match(item)
        line = item[mark.end() :] if mark else item
        head = _METRIC_HEAD.match(line)
        if head is None:
            metrics.append(
                {"name": line, "unit": "", **dict.fromkeys(_VALUE_PARTS), "key": bool(mark)}
            )
            continue
        metric: dict[str, Any] = {
            "name": head["name"].strip(),
            "unit": (head["unit"] or "").strip(),
            **dict.fromkeys(_VALUE_PARTS),
            "key": bool(mark),
        }
        rest = head["rest"]
        found = list(_METRIC_VALUE.finditer(rest))
        read: set[str] = set()
        for i, match in enumerate(found):
            part = _PARTS.get(match["part"], match["part"].lower())
            read.add(part)
            end = found[i + 1].start() if i + 1 < len(found) else len(rest)
            raw = _VALUE_END.split(rest[match.end() : end], maxsplit=1)[0].strip(" ,\t")
            if raw.endswith(("%", "％")) and not metric["unit"]:
                metric["unit"] = "%"
            metric[part] = _value_in_unit(raw, metric["unit"], warnings, metric["name"], part)
        if warnings is not None:
            for loose in _METRIC_ANY_VALUE.finditer(rest):
                part = _PARTS.get(loose["part"], loose["part"].lower())
                raw = loose["value"].strip()
                if part not in read and raw and raw.lower() not in _BLANKS:
                    read_number(raw, f"{metric['name']} {VALUE_LABELS[part]}", warnings)
        metrics.append(metric)
    return metrics


def _value_in_unit(raw: str, unit: str, warnings: list[str] | None, name: str, part: str) -> Any:
    """Read one value of a metric line in the metric's unit ("1.2亿" in 万元 is 12000).

    The whole value is read, as every other number of the app is (kb/parsing.py): "1.2亿元" was
    read as 1.2 and "8k" as 8 when only the leading digits counted. A note after a readable
    amount ("1130.5（目标未达成）") is left out; anything else unreadable ("12万5千", "50万-60万")
    is left empty with a warning, or passed on for the schema to refuse without ``warnings``.
    """
    text = unneutralize(raw)
    number = parsing.parse_in_unit(text, unit)
    if not isinstance(number, str):
        return number
    cleaned = parsing.clean(text)
    lead = _LEADING_AMOUNT.match(cleaned)
    if lead is not None and cleaned[lead.end() :].lstrip().startswith(("（", "(")):
        return parsing.parse_in_unit(lead[0], unit)
    return read_number(text, f"{name} {VALUE_LABELS[part]}", warnings)


def parse_hypotheses(text: str) -> list[Any]:
    """Read "[已验证] 海报 A 点击率高 20%（依据：A/B 各 1 万人）" lines, or a JSON array."""
    found = _json_list(text)
    if found is not None:
        return found
    hypotheses = []
    for line in _items(text):
        result = "inconclusive"
        head = _RESULT_HEAD.match(line)
        if head and head["label"].lower() in _RESULTS:
            result, line = _RESULTS[head["label"].lower()], head["rest"]
        evidence = ""
        tail = _EVIDENCE.match(line)
        if tail:
            line, evidence = tail["statement"], tail["evidence"]
        hypotheses.append({"statement": line.strip(), "result": result, "evidence": evidence})
    return hypotheses


# A document in the friendly form starts on a line "【文档】title（kind label）".
DOCUMENT_MARK = "【文档】"
_DOCUMENT_HEAD = re.compile(r"^【文档】(?P<title>.*)（(?P<kind>[^（）\n]*)）[ \t]*$", re.M)


def parse_documents(text: str) -> list[Any]:
    """Read documents: "【文档】title（kind）" sections, a JSON array, or Markdown as one document."""
    found = _json_list(text)
    if found is not None:
        return found
    if text.startswith(DOCUMENT_MARK) and (heads := list(_DOCUMENT_HEAD.finditer(text))):
        documents = []
        for n, head in enumerate(heads):
            end = heads[n + 1].start() if n + 1 < len(heads) else len(text)
            body = text[head.end() : end]
            body = body.removeprefix("\n")
            if n + 1 < len(heads):
                body = body.removesuffix("\n\n")
            documents.append(
                {"title": head["title"], "kind": document_kind(head["kind"]), "body": body}
            )
        return documents
    return [{"title": DEFAULT_DOCUMENT_TITLE, "kind": "strategy", "body": text}] if text else []


def format_list(items: list[str]) -> str:
    """Write list items joined by 、."""
    return "、".join(items)


def format_rewards(rewards: list[dict[str, Any]]) -> str:
    """Write one reward a line: type：detail（可叠加）."""
    lines = []
    for reward in rewards:
        line = reward["type"] + (f"：{reward['detail']}" if reward["detail"] else "")
        lines.append(line + ("（可叠加）" if reward["stackable"] else ""))
    return "\n".join(lines)


def format_metrics(metrics: list[dict[str, Any]]) -> str:
    """Write one metric a line: name（unit）：基线 x，目标 y，实际 z; the key one marked 【主要指标】."""
    lines = []
    for metric in metrics:
        values = [
            f"{label} {format_number(metric[part])}"
            for part, label in (("baseline", "基线"), ("target", "目标"), ("actual", "实际"))
            if metric[part] is not None
        ]
        unit = f"（{metric['unit']}）" if metric["unit"] else ""
        mark = KEY_MARK if metric.get("key") else ""
        lines.append(f"{mark}{metric['name']}{unit}：{'，'.join(values)}")
    return "\n".join(lines)


def format_hypotheses(hypotheses: list[dict[str, Any]]) -> str:
    """Write one hypothesis a line: [已验证] statement（依据：evidence）."""
    lines = []
    for hypothesis in hypotheses:
        label = HYPOTHESIS_RESULTS[hypothesis["result"]]
        evidence = f"（依据：{hypothesis['evidence']}）" if hypothesis["evidence"] else ""
        lines.append(f"[{label}] {hypothesis['statement']}{evidence}")
    return "\n".join(lines)


def format_documents(documents: list[dict[str, Any]]) -> str:
    """Write documents as text: each under a line "【文档】title（kind）" (a lone default
    strategy document as its Markdown alone)."""
    if not documents:
        return ""
    (first, *rest) = documents
    if not rest and first["title"] == DEFAULT_DOCUMENT_TITLE and first["kind"] == "strategy":
        return str(first["body"])
    return "\n\n".join(
        f"{DOCUMENT_MARK}{d['title']}（{DOCUMENT_KINDS.get(d['kind'], d['kind'])}）\n{d['body']}"
        for d in documents
    )


Parser = Callable[[str], list[Any]]
Formatter = Callable[[Any], str]
NESTED: dict[str, tuple[Formatter, Parser]] = {
    "audience": (format_list, parse_list),
    "products": (format_list, parse_list),
    "channels": (format_list, parse_list),
    "tags": (format_list, parse_list),
    "rewards": (format_rewards, parse_rewards),
    "metrics": (format_metrics, parse_metrics),
    "hypotheses": (format_hypotheses, parse_hypotheses),
    "documents": (format_documents, parse_documents),
}


def normalize_nested(field: str, items: list[Any], warnings: list[str] | None = None) -> list[Any]:
    """Bring parsed nested items into the schema's shape (labels to codes, numbers to floats).

    With ``warnings``, a metric value that is no number is left empty and named there.
    """
    if field == "rewards":
        return [_mapped(item, _REWARD_KEYS, {"stackable": parse_bool}) for item in items]
    if field == "metrics":
        converters: dict[str, Callable[[Any], Any]] = dict.fromkeys(_VALUE_PARTS, parse_number)
        converters["key"] = parse_bool
        metrics = [_mapped(item, _METRIC_KEYS, converters) for item in items]
        if warnings is not None:
            for position, metric in enumerate(metrics, start=1):
                if isinstance(metric, dict):
                    name = metric.get("name") or f"指标第 {position} 项"
                    for part in _VALUE_PARTS:
                        if isinstance(metric.get(part), str):
                            metric[part] = read_number(
                                metric[part], f"{name} {VALUE_LABELS[part]}", warnings
                            )
        return metrics
    if field == "hypotheses":
        return [_mapped(item, _HYPOTHESIS_KEYS, {"result": hypothesis_result}) for item in items]
    if field == "documents":
        return [_mapped(item, _DOCUMENT_KEYS, {"kind": document_kind}) for item in items]
    return [str(item) if isinstance(item, int | float) else item for item in items]


# Chinese keys of nested items; each part's one Chinese name (kb/vocab.py ROW_FIELD_LABELS, what
# the Markdown export writes) is added below, so an export reads back.
_REWARD_KEYS = {
    "类型": "type",
    "奖励": "type",
    "说明": "detail",
    "详情": "detail",
    "可叠加": "stackable",
}
_METRIC_KEYS = {
    "指标": "name", "名称": "name", "单位": "unit", "基线": "baseline", "基准": "baseline",
    "目标": "target", "实际": "actual", "主要指标": "key",
}  # fmt: skip
_HYPOTHESIS_KEYS = {"假设": "statement", "结果": "result", "依据": "evidence", "证据": "evidence"}
_DOCUMENT_KEYS = {"标题": "title", "类型": "kind", "正文": "body", "内容": "body"}
for _field, _keys in (
    ("rewards", _REWARD_KEYS),
    ("metrics", _METRIC_KEYS),
    ("hypotheses", _HYPOTHESIS_KEYS),
    ("documents", _DOCUMENT_KEYS),
):
    _keys.update({label: code for code, label in ROW_FIELD_LABELS[_field].items()})


_TEXT_KEYS = {"type", "detail", "name", "unit", "statement", "evidence", "title", "body"}


def _mapped(item: Any, keys: dict[str, str], converters: Mapping[str, Callable[[Any], Any]]) -> Any:
    if not isinstance(item, dict):
        return item
    out = {keys.get(str(key), str(key)): value for key, value in item.items()}
    for key, value in out.items():
        if key in _TEXT_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = format_number(float(value))  # YAML reads an unquoted 618 as a number
        elif key in _TEXT_KEYS and value is None:
            out[key] = ""
    for key, convert in converters.items():
        if key in out:
            out[key] = convert(out[key])
    return out


def encode(field: str, value: list[Any]) -> str:
    """Write a nested field as its friendly text when that reads back exactly, else as JSON."""
    formatter, parser = NESTED[field]
    if not value:
        return ""
    text = formatter(value)
    if normalize_nested(field, parser(text)) == value:
        return text
    return json.dumps(value, ensure_ascii=False)
