"""The column names a spreadsheet may use, in Chinese or English, and how headers are read.

One table maps every accepted column name to a field of the campaign schema; the import page and
docs/importing.md show the same table (tests/ingest/test_ingest_columns.py checks the doc). A header is
matched after folding width and case and dropping spaces and marks, so 「活动名称」, 「活动名称*」,
「 Title 」 and 「活动名称/title」 are the same column. Metrics are columns named
``<metric>_<part>`` (``GMV_target``, ``GMV目标``, ``转化率-实际``), or a metric name in a header
row above sub-headers 目标/实际/基线 (merged cells in Excel), or rows on a separate metrics sheet.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from kb.campaigns import metrics as metric_catalog
from kb.vocab import FIELD_LABELS, ROW_FIELD_LABELS, field_label
from search.normalize import fold as fold_text

# field -> accepted names. The header the exporters write is the field's one Chinese name
# (kb/vocab.py field_label: the form's, the history's and the errors'), put first below.
FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "external_id": ("活动编号", "external_id", "外部编号", "编号", "活动id", "id", "campaign_id"),
    "title": ("活动名称", "title", "名称", "活动", "活动标题", "标题", "campaign", "name"),
    "industry": ("行业", "industry", "所属行业", "品类行业"),
    "department": ("部门", "department", "负责部门", "归属部门", "团队", "dept"),
    "business_line": ("业务线", "business_line", "品牌", "业务", "brand"),
    "goal_type": ("目标类型", "goal_type", "goal type", "目的类型"),
    "goal": ("活动目标", "goal", "目标", "业务目标", "目标描述", "objective"),
    "audience": ("人群", "audience", "目标人群", "对象", "用户群", "目标用户", "segments"),
    "products": ("商品", "products", "商品品类", "品类", "货品", "产品", "sku"),
    "rewards": ("奖励", "rewards", "权益", "激励", "优惠", "奖励机制", "incentives"),
    "channels": ("渠道", "channels", "投放渠道", "触达渠道", "channel"),
    "start_date": ("开始日期", "start_date", "开始时间", "起始日期", "上线日期", "start"),
    "end_date": ("结束日期", "end_date", "结束时间", "截止日期", "下线日期", "end"),
    "status": ("状态", "status", "活动状态"),
    "budget_cny": (
        "预算（元）",
        "预算",
        "budget_cny",
        "budget",
        "活动预算",
        "预算金额",
        "费用预算",
    ),
    "metrics": ("指标", "metrics", "数据成效", "指标数据", "数据"),
    "summary": ("背景与概述", "summary", "背景", "概述", "活动概述", "背景与目标", "overview"),
    "went_well": ("做得好的", "went_well", "亮点", "做得好", "成功经验", "what went well"),
    "problems": ("问题与原因", "problems", "问题", "不足", "问题与不足", "issues"),
    "lessons": ("经验教训", "lessons", "经验", "经验沉淀", "复盘结论", "lessons learned"),
    "recommendations": ("下次建议", "recommendations", "建议", "改进建议", "下一步", "next steps"),
    "hypotheses": ("假设验证", "hypotheses", "假设", "验证的假设", "ab测试"),
    "documents": ("文档", "documents", "策略文档", "方案", "附件"),
    "tags": ("标签", "tags", "关键词", "tag"),
}


def _label_first(label: str, aliases: tuple[str, ...]) -> tuple[str, ...]:
    return (label, *(alias for alias in aliases if alias != label))


FIELD_COLUMNS = {
    field: _label_first(field_label(field), aliases) for field, aliases in FIELD_COLUMNS.items()
}

# Columns of a separate metrics sheet or file: one row per metric of a campaign.
METRIC_SHEET_COLUMNS: dict[str, tuple[str, ...]] = {
    "campaign_row": ("活动行号", "campaign_row", "行号", "row"),
    "external_id": ("活动编号", "external_id", "外部编号", "编号", "活动id", "campaign_id"),
    "title": ("活动名称", "title", "活动", "campaign"),
    "name": ("指标", "name", "指标名称", "metric", "指标名"),
    "unit": ("单位", "unit"),
    "baseline": ("基线", "baseline", "基线值", "基准", "基准值", "上期", "同期"),
    "target": ("目标", "target", "目标值", "计划"),
    "actual": ("实际", "actual", "实际值", "实绩", "完成值"),
    "key": ("主要指标", "key", "是否主要指标"),
}
# Its exported headers: the campaign's fields and a metric's parts by their Chinese names.
_SHEET_LABELS = {**FIELD_LABELS, **ROW_FIELD_LABELS["metrics"]}
METRIC_SHEET_COLUMNS = {
    column: _label_first(_SHEET_LABELS.get(column, aliases[0]), aliases)
    for column, aliases in METRIC_SHEET_COLUMNS.items()
}
METRIC_SHEET_NAMES = ("指标", "metrics", "指标数据", "数据成效", "metric")

# Columns the exporters add for a reader (the key metric's name, attainment and verdict): derived
# from the metrics, so an importer knows them and reads nothing from them.
DERIVED_COLUMNS: dict[str, str] = {
    "key_metric": "主要指标",
    "key_attainment": "主要指标达成率",
    "key_verdict": "主要指标结果",
}

MetricPart = Literal["baseline", "target", "actual", "unit"]
METRIC_PARTS: dict[MetricPart, tuple[str, ...]] = {
    "baseline": METRIC_SHEET_COLUMNS["baseline"],
    "target": METRIC_SHEET_COLUMNS["target"],
    "actual": METRIC_SHEET_COLUMNS["actual"],
    "unit": METRIC_SHEET_COLUMNS["unit"],
}

# Header marks that carry no meaning: "活动名称*", "【必填】活动名称".
_NOISE = re.compile(r"[\s_\-·:：*＊#]|[\[【(（]?必填[\]】)）]?|[\[【(（]?选填[\]】)）]?")
_UNIT = re.compile(r"^(?P<base>.*?)[(（\[【](?P<unit>[^()（）\[\]【】]*)[)）\]】]$")
_BILINGUAL = re.compile(r"[/|\n｜]")
_METRIC_COLUMN = re.compile(
    r"^(?P<name>.+?)[\s_\-·.:：/]*(?P<part>"
    + "|".join(sorted({re.escape(a) for v in METRIC_PARTS.values() for a in v}, key=len)[::-1])
    + r")$",
    re.IGNORECASE,
)


def fold(text: str) -> str:
    """Fold width, script and case and drop spaces and marks: the key headers are compared by."""
    return _NOISE.sub("", fold_text(text))


def _index(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {fold(alias): field for field, aliases in table.items() for alias in aliases}


# Built on first use: folding loads OpenCC's tables, and importing does no I/O.
@cache
def _field_index() -> dict[str, str]:
    return _index(FIELD_COLUMNS)


@cache
def _metric_sheet_index() -> dict[str, str]:
    return _index(METRIC_SHEET_COLUMNS)


@cache
def _derived_index() -> frozenset[str]:
    return frozenset(fold(name) for name in DERIVED_COLUMNS.values())


@cache
def _part_index() -> dict[str, MetricPart]:
    return {fold(alias): part for part, aliases in METRIC_PARTS.items() for alias in aliases}


def split_unit(header: str) -> tuple[str, str]:
    """Split "GMV（万元）" into ("GMV", "万元"); a header without brackets has no unit."""
    text = unicodedata.normalize("NFKC", header).strip()
    match = _UNIT.match(text)
    if match and match["base"].strip():
        return match["base"].strip(), match["unit"].strip()
    return text, ""


def match_name(header: str, table: Literal["campaign", "metric_sheet"] = "campaign") -> str | None:
    """Return the field a header names, trying "活动名称/title" halves and "预算（元）" bases."""
    index = _field_index() if table == "campaign" else _metric_sheet_index()
    candidates = [header, *_BILINGUAL.split(header)]
    for candidate in candidates:
        for text in (candidate, split_unit(candidate)[0]):
            key = fold(text)
            if key and key in index:
                return index[key]
    return None


def metric_part(header: str) -> MetricPart | None:
    """Return which part of a metric a sub-header names (目标 → target), if any."""
    for candidate in (header, *_BILINGUAL.split(header)):
        part = _part_index().get(fold(candidate))
        if part:
            return part
    return None


@dataclass(frozen=True, slots=True)
class Column:
    """What one column of a sheet holds: a schema field, a part of a metric, or nothing known."""

    index: int
    header: str
    field: str | None = None
    metric: str | None = None
    part: MetricPart | None = None
    unit: str = ""
    # "预算（万元）": values are multiplied by this to get yuan.
    scale: float = 1.0
    # An exporter's derived column (主要指标达成率): known, and read into nothing.
    derived: bool = False

    @property
    def known(self) -> bool:
        return self.field is not None or self.metric is not None or self.derived


def cell_text(value: Any) -> str:
    """Return a header cell as text (numbers and blanks included)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _single(index: int, header: str) -> Column:
    """Read a one-row header cell: a field name, else ``<metric>_<part>``, else unknown."""
    if fold(header) in _derived_index():
        return Column(index, header, derived=True)
    field = match_name(header)
    if field is not None:
        scale = 1.0
        if field == "budget_cny":
            unit = split_unit(header)[1]
            scale = 1e8 if "亿" in unit else 1e4 if "万" in unit else 1.0
        return Column(index, header, field=field, scale=scale)
    text = unicodedata.normalize("NFKC", header).strip()
    match = _METRIC_COLUMN.match(text)
    if match:
        name, unit = split_unit(match["name"].strip(" _-·.:：/"))
        part = _part_index().get(fold(match["part"]))
        if name and part:
            return Column(index, header, metric=name, part=part, unit=unit)
    name, unit = split_unit(text)
    if metric_catalog.lookup(name) is not None:
        # A column named after a known metric alone ("ROI", "复购率（%）") holds its actual value.
        return Column(index, header, metric=name, part="actual", unit=unit)
    return Column(index, header)


def read_header(header: list[Any], above: list[Any] | None = None) -> list[Column]:
    """Read a header row, with the row above it when metrics are grouped under merged cells.

    In the row above, a metric name stands over its first sub-column and the cells it was merged
    across read as blank: "GMV（万元）" over 目标 | 实际. A group counts as a metric only when every
    column under it is a metric part (目标/实际/基线/单位) and one of them is 实际 or 基线, so a
    group "五要素" over 目标 | 部门 | 人群 keeps 目标 as the campaign's goal.
    """
    texts = [cell_text(v) for v in header]
    columns = [_single(i, text) for i, text in enumerate(texts)]
    if not above:
        return columns
    groups = [cell_text(v) for v in above] + [""] * max(0, len(texts) - len(above))
    starts = [i for i, g in enumerate(groups[: len(texts)]) if g]
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(texts)
        # A group spans its own column and the blank ones after it, up to a blank sub-header.
        span = [i for i in range(start, end) if texts[i]]
        span = span[: next((k for k, i in enumerate(span) if i - start != k), len(span))]
        parts = [metric_part(texts[i]) for i in span]
        if not span or None in parts or not ({"actual", "baseline"} & set(parts)):
            continue
        name, unit = split_unit(groups[start])
        for i, part in zip(span, parts, strict=True):
            columns[i] = Column(i, f"{groups[start]} {texts[i]}", metric=name, part=part, unit=unit)
    return columns


def header_score(row: list[Any]) -> int:
    """Count the cells of a row that name a known column (to find the header among title rows)."""
    return sum(
        1
        for i, value in enumerate(row)
        if (text := cell_text(value)) and (_single(i, text).known or metric_part(text))
    )


def find_header(rows: list[list[Any]]) -> int | None:
    """Return the index of the header row among the first rows, or None when none has two names."""
    best, best_score = None, 1
    for i, row in enumerate(rows):
        score = header_score(row)
        if score > best_score:
            best, best_score = i, score
    return best


def export_header(field: str) -> str:
    """Return the header the exporters write for a field: its Chinese name (field_label)."""
    return FIELD_COLUMNS[field][0]


def mapping_table() -> list[tuple[str, str, str]]:
    """Return (field, export header, other accepted names) rows for the docs and the import page."""
    return [(field, aliases[0], "、".join(aliases[1:])) for field, aliases in FIELD_COLUMNS.items()]
