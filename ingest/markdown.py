"""Read one campaign from Markdown: fields in YAML front matter, retro sections from headings.

Headings are matched to fields by name in Chinese or English (``## 做得好的`` / ``## What went
well`` → went_well; ``## 问题`` → problems; ``## 经验`` → lessons; ``## 建议`` → recommendations).
A results section's table (指标 | 基线 | 目标 | 实际) becomes metrics, a hypotheses section's
lines become hypotheses, "行业：母婴" lines outside the known sections fill fields the front matter
left out, and sections with other headings are kept as a document, so no text is lost.

The exporter marks its headings (``## 做得好的 {#went_well}``); when a file has such marks, only
marked headings start sections, so a retro that contains headings of its own reads back exactly.
Word and PowerPoint files are converted to Markdown first and read here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import IO, Any

import yaml

from ingest import cells
from ingest.columns import fold, match_name, split_unit
from ingest.encoding import decode_bytes
from ingest.errors import FileReadError
from ingest.limits import load_front_matter
from ingest.records import SourceRow, normalize_record

SECTION_HEADINGS: dict[str, tuple[str, ...]] = {
    "summary": (
        "背景与概述", "背景", "概述", "活动背景", "背景与目标", "活动概述", "项目背景", "活动简介",
        "summary", "background", "overview",
    ),
    "goal": ("活动目标", "目标", "目标设定", "goals", "goal", "objectives"),
    "went_well": (
        "做得好的", "做得好的地方", "做得好", "亮点", "成功之处", "成功经验", "what went well",
        "went well", "highlights", "wins",
    ),
    "problems": (
        "问题与原因", "问题", "不足", "问题与不足", "待改进", "踩坑", "问题分析", "problems",
        "issues", "what went wrong", "challenges",
    ),
    "lessons": (
        "经验教训", "经验", "经验沉淀", "教训", "复盘结论", "经验总结", "lessons", "lessons learned",
        "takeaways", "learnings",
    ),
    "recommendations": (
        "下次建议", "建议", "改进建议", "下一步", "后续计划", "下一步建议", "recommendations",
        "next steps", "next time",
    ),
    "hypotheses": ("假设验证", "验证的假设", "假设", "实验结论", "ab测试", "hypotheses", "experiments"),
    "metrics": (
        "数据成效", "数据表现", "结果", "数据结果", "活动数据", "核心数据", "效果数据", "数据复盘",
        "指标", "结果与目标对比", "results", "metrics", "results vs targets",
    ),
}  # fmt: skip
_TEXT_SECTIONS = ("summary", "goal", "went_well", "problems", "lessons", "recommendations")
# Every pattern below runs on a whole line of a file someone uploads, so none may backtrack
# more than a bounded amount per character: "(.*?)\s*#*\s*$" and a label of "**…" before a
# colon that never comes took minutes on a 10 KB line of "*" (red team, December 2026).
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_MARK = re.compile(r"\{#(?P<field>[a-z_]+)(?:\s+kind=(?P<kind>[a-z]+))?\}$")
_NUMBERING = re.compile(
    r"^\s*(?:[0-9]+[.、)）]?|[一二三四五六七八九十]+[、.．]|第[一二三四五六七八九十0-9]+[部分章节]?|part\s*\d+)\s*",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^\s*(```|~~~)")
# A label starts with neither a space nor a star (bold marks are at most two, on either side).
_LABELLED = re.compile(
    r"^\s*(?:[-*•]\s*)?\*{0,2}(?P<label>[^:：|\s*][^:：|]{0,15}?)\*{0,2}\s*[:：]\s*(?P<value>.+?)\s*$"
)
_FULL_DATE = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_SHORT_DATE = re.compile(r"(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
OTHER_DOCUMENT_TITLE = "其他章节"


# Built on first use: folding loads OpenCC's tables, and importing does no I/O.
@cache
def _section_index() -> list[tuple[str, str]]:
    pairs = [(fold(alias), name) for name, aliases in SECTION_HEADINGS.items() for alias in aliases]
    return sorted(pairs, key=lambda pair: -len(pair[0]))


@cache
def _period_labels() -> frozenset[str]:
    return frozenset(
        fold(w)
        for w in (
            "活动时间",
            "活动周期",
            "时间",
            "日期",
            "活动日期",
            "周期",
            "period",
            "dates",
            "时间范围",
        )
    )


def heading_field(text: str) -> str | None:
    """Return the field a heading names: "三、做得好的地方（亮点）" → went_well."""
    base = split_unit(_NUMBERING.sub("", text))[0]
    for candidate in (fold(base), fold(text)):
        for alias, name in _section_index():
            if candidate == alias:
                return name
        for alias, name in _section_index():
            if len(alias) >= 2 and candidate.startswith(alias):
                return name
    return None


@dataclass(slots=True)
class _Section:
    heading: str
    level: int
    mark: str | None = None
    kind: str | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def body(self) -> str:
        return "\n".join(self.lines).strip("\n").strip()


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split ``---`` YAML front matter from the body; raise FileReadError when it is not YAML."""
    text = text.lstrip("\ufeff")
    if not text.startswith("---"):
        return {}, text
    match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)", text, re.S)
    if match is None:
        raise FileReadError("front matter 没有结束：应以单独一行 --- 结束")
    try:
        meta = load_front_matter(match[1]) or {}
    except RecursionError:  # PyYAML composes nested nodes recursively: [[[[…]]]] 5,000 deep
        raise FileReadError("front matter 嵌套过深，无法读取") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"第 {mark.line + 2} 行" if mark is not None else ""
        raise FileReadError(f"front matter {where}不是合法的 YAML：{exc}") from None
    if not isinstance(meta, dict):
        raise FileReadError("front matter 应为“字段: 值”的形式")
    return meta, text[match.end() :]


def _sections(body: str) -> tuple[list[str], list[_Section], str]:
    """Split the body at section headings; return (preamble lines, sections, title from # h1)."""
    lines = body.splitlines()
    headings: list[tuple[int, int, str]] = []
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            # Closing #s ("## 经验 ##") are not the text.
            headings.append((i, len(match[1]), match[2].strip().rstrip("#").rstrip()))
    marked = any(_MARK.search(text) for _, _, text in headings)
    level_one = [h for h in headings if h[1] == 1]
    # Most files are "# 标题" then "## 章节"; some use "#" for every section.
    section_level = 1 if len(level_one) >= 2 and not marked else 2
    title, title_line = "", -1
    starts: list[tuple[int, _Section]] = []
    for i, level, text in headings:
        mark = _MARK.search(text)
        if level == 1 and section_level == 2 and not title and not starts:
            title, title_line = _MARK.sub("", text).strip(), i
        elif level == section_level and (not marked or mark is not None):
            heading = _MARK.sub("", text).strip()
            field_name = mark["field"] if mark else None
            kind = mark["kind"] if mark else None
            starts.append((i, _Section(heading, level, field_name, kind)))
    first = starts[0][0] if starts else len(lines)
    preamble = [line for i, line in enumerate(lines[:first]) if i != title_line]
    sections = []
    for n, (i, section) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        section.lines = lines[i + 1 : end]
        sections.append(section)
    return preamble, sections, title


def labelled_fields(lines: list[str]) -> dict[str, Any]:
    """Read "行业：母婴" and "活动时间：2024.3.1-3.15" lines (and two-cell table rows)."""
    found: dict[str, Any] = {}
    for line in lines:
        table = _TABLE_ROW.match(line)
        if table:
            parts = [p.strip().strip("*") for p in table[1].split("|")]
            if len(parts) != 2 or not parts[0]:
                continue
            label, value = parts
        elif match := _LABELLED.match(line):
            label, value = match["label"].strip(), match["value"]
        else:
            continue
        if fold(label) in _period_labels():
            start, end = parse_period(value)
            if start:
                found.setdefault("start_date", start)
            if end:
                found.setdefault("end_date", end)
            continue
        name = match_name(label)
        if name and name not in ("metrics", "documents") and value:
            found.setdefault(name, value)
    return found


def parse_period(text: str) -> tuple[str | None, str | None]:
    """Read "2024.3.1-2024.3.15", "2024年3月1日至3月15日" into two ISO dates."""
    full = list(_FULL_DATE.finditer(text))
    if not full:
        return None, None
    try:
        start = date(int(full[0][1]), int(full[0][2]), int(full[0][3]))
        if len(full) > 1:
            end = date(int(full[1][1]), int(full[1][2]), int(full[1][3]))
        elif short := _SHORT_DATE.search(text, full[0].end()):
            end = date(start.year, int(short[1]), int(short[2]))
        else:
            return start.isoformat(), None
    except ValueError:
        return None, None
    return start.isoformat(), end.isoformat()


def _tables(lines: list[str]) -> Iterator[tuple[list[str], list[list[str]], range]]:
    """Yield (header, rows, line range) of each pipe table in ``lines``."""
    i = 0
    while i < len(lines) - 1:
        if _TABLE_ROW.match(lines[i]) and _TABLE_RULE.match(lines[i + 1]):
            header = [c.strip() for c in _TABLE_ROW.match(lines[i])[1].split("|")]  # type: ignore[index]
            j = i + 2
            rows = []
            while j < len(lines) and (row := _TABLE_ROW.match(lines[j])):
                rows.append([c.strip() for c in row[1].split("|")])
                j += 1
            yield header, rows, range(i, j)
            i = j
        else:
            i += 1


def metrics_from_tables(
    lines: list[str], warnings: list[str] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Read metric tables (指标 | 单位 | 基线 | 目标 | 实际); return metrics and the other lines.

    With ``warnings``, a value that is no number is left empty and named there.
    """
    metrics: list[dict[str, Any]] = []
    used: set[int] = set()
    for header, rows, span in _tables(lines):
        names = [match_name(h, "metric_sheet") for h in header]
        if "name" not in names or not {"target", "actual", "baseline"} & set(names):
            continue
        unit_of = {names[i]: split_unit(h)[1] for i, h in enumerate(header) if names[i]}
        for row in rows:
            cellmap = {names[i]: v for i, v in enumerate(row) if i < len(names) and names[i]}
            if not cellmap.get("name"):
                continue
            name, unit = split_unit(cellmap["name"])
            metric = {
                "name": name,
                "unit": cellmap.get("unit") or unit or unit_of.get("target") or "",
                **{
                    part: cells.read_number(
                        cellmap.get(part), f"{name} {cells.VALUE_LABELS[part]}", warnings
                    )
                    for part in ("baseline", "target", "actual")
                },
            }
            if not metric["unit"] and any(
                str(cellmap.get(p, "")).endswith("%") for p in ("target", "actual")
            ):
                metric["unit"] = "%"
            metrics.append(metric)
        used.update(span)
    return metrics, [line for i, line in enumerate(lines) if i not in used]


@dataclass(slots=True)
class ParsedDocument:
    """A campaign read from a document, and what could not be placed."""

    data: dict[str, Any]
    warnings: list[str]
    title: str


def parse_markdown(text: str, *, meta: dict[str, Any] | None = None) -> ParsedDocument:
    """Read a campaign from Markdown text (front matter already split off into ``meta``)."""
    warnings: list[str] = []
    raw: dict[str, Any] = {}
    for key, value in (meta or {}).items():
        name = match_name(str(key))
        if name is None:
            warnings.append(f"front matter 中不认识的字段“{key}”已忽略")
            continue
        raw.setdefault(name, value)
    preamble, sections, h1 = _sections(text)
    texts: dict[str, list[str]] = {}
    metrics: list[dict[str, Any]] = []
    hypotheses: list[Any] = []
    documents: list[dict[str, Any]] = []
    others: list[str] = []
    labelled_lines = list(preamble)
    for section in sections:
        if section.mark == "document":
            documents.append(
                {"title": section.heading, "kind": section.kind or "other", "body": section.body}
            )
            continue
        name = section.mark or heading_field(section.heading)
        if name in _TEXT_SECTIONS:
            texts.setdefault(name, []).append(section.body)
        elif name == "hypotheses":
            hypotheses += cells.parse_hypotheses(section.body)
        elif name == "metrics":
            found, rest = metrics_from_tables(section.lines, warnings)
            metrics += found
            remainder = "\n".join(rest).strip()
            if remainder:
                heading = _NUMBERING.sub("", section.heading)
                texts.setdefault("summary", []).append(f"**{heading}**\n\n{remainder}")
        else:
            labelled_lines += section.lines
            others.append(f"## {section.heading}\n\n{section.body}".strip())
    for name, parts in texts.items():
        raw.setdefault(name, "\n\n".join(p for p in parts if p))
    if metrics:
        raw.setdefault("metrics", metrics)
    if hypotheses:
        raw.setdefault("hypotheses", hypotheses)
    if documents or others:
        body = "\n\n".join(others)
        extra = [{"title": OTHER_DOCUMENT_TITLE, "kind": "other", "body": body}] if body else []
        raw.setdefault("documents", documents + extra)
    for name, value in labelled_fields(labelled_lines).items():
        raw.setdefault(name, value)
    if "start_date" not in raw and "end_date" not in raw:
        # A cover line such as "社群运营组 · 2024.05.20-2024.06.01" dates the campaign.
        for line in labelled_lines:
            start, end = parse_period(line)
            if start and end:
                raw["start_date"], raw["end_date"] = start, end
                break
    if h1:
        raw.setdefault("title", h1)
    preamble_text = "\n".join(line for line in preamble if not _LABELLED.match(line)).strip()
    if preamble_text:
        # Text before the first section (an intro, a note) leads the summary rather than being lost.
        summary = raw.get("summary")
        raw["summary"] = (
            f"{preamble_text}\n\n{summary}" if isinstance(summary, str) else preamble_text
        )
    data = normalize_record(raw, warnings)
    return ParsedDocument(data=data, warnings=warnings, title=str(data.get("title") or h1))


class MarkdownReader:
    """One campaign from a Markdown file with optional YAML front matter."""

    def __init__(self, binary: IO[bytes]) -> None:
        self.binary = binary
        self.warnings: list[str] = []
        self._done = 0

    def position(self) -> tuple[int, int]:
        return self._done, 1

    def rows(self) -> Iterator[SourceRow]:
        meta, body = split_front_matter(decode_bytes(self.binary.read()))
        parsed = parse_markdown(body, meta=meta)
        self.warnings += parsed.warnings
        self._done = 1
        yield SourceRow(row=1, data=parsed.data)
