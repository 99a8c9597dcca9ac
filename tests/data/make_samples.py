"""Write the import samples in tests/data/: run ``.venv/bin/python tests/data/make_samples.py``.

The samples are what teams actually hand over: a JSON export from another instance, JSON Lines
with a broken line, CSV from Excel on Chinese Windows (GBK) and with a BOM, a workbook with a
title banner, merged group headers and a metrics sheet, Markdown with front matter, a Word retro
and a PowerPoint deck. Several are messy on purpose (extra columns, blank rows, wrong dates);
tests/transfer/test_import_samples.py says what each must import to. The binary files are committed, and
this script regenerates them byte for byte up to the zip timestamps.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

# fmt: off
# The samples are data laid out as a spreadsheet shows them: one row to a line.

HERE = Path(__file__).resolve().parent


def api_campaign(number: int, **fields: Any) -> dict[str, Any]:
    """A campaign as another Campaign KB instance's API returns it (server fields included)."""
    base: dict[str, Any] = {
        "id": 900 + number,
        "version": 3,
        "business_line": None,
        "goal": "",
        "audience": [],
        "products": [],
        "rewards": [],
        "channels": [],
        "status": "completed",
        "budget_cny": None,
        "metrics": [],
        "summary": "",
        "went_well": "",
        "problems": "",
        "lessons": "",
        "recommendations": "",
        "hypotheses": [],
        "documents": [],
        "tags": [],
        "created_at": "2024-07-02T08:15:00+00:00",
        "updated_at": "2024-07-05T10:40:00+00:00",
        "deleted_at": None,
    }
    base.update(fields)
    return base


JSON_CAMPAIGNS = [
    api_campaign(
        1,
        external_id="hz-2024-018",
        title="2024 618 美妆直播间：达人专场 + 店播日不停",
        industry="美妆",
        department="直播电商部",
        business_line="花漾美妆",
        goal_type="gmv",
        goal="6.1–6.18 直播间 GMV 3000 万元，店播占比不低于 40%，退货率控制在 25% 以内",
        audience=["高价值会员", "价格敏感用户", "新用户"],
        products=["精华", "面膜", "防晒"],
        rewards=[
            {"type": "满减券", "detail": "直播间专享 每满 300 减 40", "stackable": True},
            {"type": "赠品", "detail": "下单送同系列小样 3 件", "stackable": False},
        ],
        channels=["直播", "短视频", "KOL"],
        start_date="2024-06-01",
        end_date="2024-06-18",
        budget_cny=4200000,
        metrics=[
            {
                "name": "GMV", "unit": "万元", "baseline": 2100, "target": 3000, "actual": 3380,
                "catalog_key": "gmv", "direction": "higher", "attainment_pct": 112.7,
                "lift_pct": 61.0, "hit": True,
            },
            {
                "name": "退货率", "unit": "%", "baseline": 27.5, "target": 25, "actual": 31.2,
                "catalog_key": "return_rate", "direction": "lower", "attainment_pct": 80.1,
                "lift_pct": -13.5, "hit": False,
            },
        ],
        summary="达人专场拉高峰值，店播日不停稳住基本盘；但达人场退货率偏高。",
        went_well="- 店播 18 天不断档，店播 GMV 占比 46%\n- 达人专场单场峰值 820 万元",
        problems="- 达人场冲动消费多，退货率 38%（执行偏差：未设置达人场专属退货提醒）",
        lessons="店播是基本盘，达人专场只适合拉新品声量；达人场要单独核算退货后 ROI。",
        recommendations="达人场前置“适用肤质”确认弹窗；达人佣金按退货后 GMV 结算。",
        hypotheses=[
            {
                "statement": "店播时长翻倍能让店播 GMV 占比超过 40%",
                "result": "validated",
                "evidence": "店播占比 46%",
            }
        ],
        tags=["618", "直播", "达人", "退货"],
    ),
    api_campaign(
        2,
        external_id="hz-2024-022",
        title="花漾会员日：老客积分翻倍 + 复购券",
        industry="美妆",
        department="会员运营中心",
        goal_type="retention",
        goal="会员日当天老客复购率 18%",
        audience=["高价值会员", "付费会员"],
        products=["精华", "面霜"],
        rewards=[{"type": "积分", "detail": "会员日积分翻倍", "stackable": True}],
        channels=["企业微信社群", "App 推送", "短信"],
        start_date="2024-07-08",
        end_date="2024-07-08",
        budget_cny=180000,
        metrics=[{"name": "复购率", "unit": "%", "baseline": 12.4, "target": 18, "actual": 16.9}],
        lessons="积分翻倍对高价值会员几乎无感，复购主要来自复购券。",
        tags=["会员日", "复购"],
    ),
    api_campaign(
        3,
        external_id=None,
        title="校园开学季：学生认证领 20 元无门槛券",
        industry="校园服务",
        department="校园业务部",
        goal_type="acquisition",
        audience=["大学生", "新用户"],
        rewards=[{"type": "红包", "detail": "学生认证领 20 元无门槛券", "stackable": False}],
        channels=["小程序", "线下门店"],
        start_date="2024-09-01",
        end_date="2024-09-15",
        status="completed",
        metrics=[{"name": "新增用户数", "unit": "人", "baseline": None, "target": 30000, "actual": 26400}],
        problems="认证接口高峰期超时，约 12% 学生认证失败后流失（资源缺口）。",
    ),
]

JSONL_LINES = [
    json.dumps(
        {
            "external_id": "sx-2024-031",
            "title": "鲜丰到家 中秋礼盒预售：拼团 3 人成团",
            "industry": "生鲜",
            "department": "电商运营中心",
            "goal_type": "referral",
            "audience": ["宝妈", "价格敏感用户"],
            "products": ["月饼礼盒", "大闸蟹券"],
            "rewards": [{"type": "拼团价", "detail": "3 人成团立减 30 元", "stackable": False}],
            "channels": ["企业微信社群", "小程序"],
            "start_date": "2024-08-20",
            "end_date": "2024-09-16",
            "metrics": [
                {"name": "K值", "unit": "", "baseline": 0.6, "target": 1.2, "actual": 1.45},
                {"name": "成团率", "unit": "%", "target": 60, "actual": 52.3},
            ],
            "lessons": "团长预热 2 天的群成团率比当天拉群高 18 个百分点。",
        },
        ensure_ascii=False,
    ),
    "",
    json.dumps(
        {
            "external_id": "sx-2024-035",
            "title": "沉睡用户召回：满 59 减 20 + 短信唤醒",
            "industry": "生鲜",
            "department": "用户运营部",
            "goal_type": "reactivation",
            "audience": ["沉睡用户"],
            "channels": ["短信", "App 推送"],
            "start_date": "2024-10-08",
            "end_date": "2024-10-31",
            "budget_cny": 260000,
            "metrics": [{"name": "召回率", "unit": "%", "baseline": 3.1, "target": 6, "actual": 4.4}],
        },
        ensure_ascii=False,
    ),
    # A line cut off by a failed copy: not JSON.
    '{"external_id": "sx-2024-036", "title": "周末鲜花订阅 首单 9.9", "industry": "生鲜",',
    # Chinese goal label and a bad date: the API shape takes codes and ISO dates only.
    json.dumps(
        {
            "external_id": "sx-2024-040",
            "title": "双十一 生鲜年货囤货节",
            "industry": "生鲜",
            "department": "电商运营中心",
            "goal_type": "成交",
            "start_date": "2024-11-01",
            "end_date": "2024-10-11",
        },
        ensure_ascii=False,
    ),
    json.dumps(
        {
            "external_id": "sx-2024-041",
            "title": "冬季火锅食材节：会员价 + 满赠",
            "industry": "生鲜",
            "department": "品类运营部",
            "goal_type": "gmv",
            "start_date": "2024-12-01",
            "end_date": "2024-12-20",
            "status": "running",
            "metrics": [{"name": "GMV", "unit": "万元", "target": 800}],
        },
        ensure_ascii=False,
    ),
]

# CSV saved from Excel on a Chinese Windows PC: GBK, bilingual headers, labels not codes,
# budgets in 万元, dates as people type them.
GBK_ROWS = [
    ["活动名称/title", "行业/industry", "负责部门/department", "目标类型/goal_type", "活动目标/goal",
     "目标人群/audience", "商品/products", "渠道/channels", "开始日期/start_date",
     "结束日期/end_date", "状态/status", "预算（万元）", "GMV_target", "GMV_actual",
     "转化率目标", "转化率实际", "经验/lessons", "负责人"],
    ["宝贝优选 开学季纸尿裤囤货节", "母婴", "用户增长部", "GMV", "9 月 GMV 破 1500 万元",
     "宝妈；价格敏感用户", "纸尿裤、湿巾", "小程序, 企业微信社群", "2024/8/25", "2024/9/10",
     "已完成", "120", "1500", "1620", "4.5%", "5.1%", "囤货装 + 满赠比单纯打折客单价高 22%", "王芳"],
    ["宝贝优选 孕期家庭拉新 试用装派发", "母婴", "用户增长部", "拉新", "",
     "孕期家庭、新用户", "纸尿裤试用装", "短视频、KOL", "2024年9月15日", "2024年10月15日",
     "进行中", "35", "", "", "", "", "", "李雷"],
    ["宝贝优选 老客复购 连续订购立减", "母婴", "会员运营中心", "留存", "连续订购 3 期以上用户占比 30%",
     "高价值会员", "奶粉", "App 推送、短信", "2024.10.01", "2024.12.31",
     "计划中", "80", "", "", "", "", "", "韩梅梅"],
    # A goal type nobody defined: rejected with the list of allowed values.
    ["宝贝优选 会员积分商城上新", "母婴", "会员运营中心", "积分运营", "",
     "付费会员", "", "App 推送", "2024/11/01", "2024/11/30", "计划中", "", "", "", "", "", "", ""],
]

# CSV with a BOM, exported by a web tool: a title banner, English and Chinese headers mixed,
# extra columns, blank rows, a wrong date, metrics as <name>_target / <name>_actual columns.
BOM_ROWS = [
    ["2024 下半年 本地生活活动复盘汇总（导出自运营平台）"],
    [],
    ["external_id", "title", "industry", "department", "goal_type", "audience", "rewards",
     "channels", "start_date", "end_date", "status", "budget", "GMV_target", "GMV_actual",
     "ROI_target", "ROI_actual", "what went well", "problems", "备注", "导出时间"],
    ["wm-2024-101", "外卖 夜宵节：满 40 减 12 叠加会员红包", "本地生活", "外卖事业部", "conversion",
     "大学生;白领;价格敏感用户", "满减券：满 40 减 12（可叠加）\n红包：会员红包 5 元（可叠加）",
     "App 推送;短信", "2024-07-15", "2024-08-15", "completed", "1,500,000", "2800", "3150",
     "1:3", "1:2.4", "- 22 点后订单 +35%", "=HYPERLINK 式的羊毛党批量下单（风控规则滞后）", "复盘会 8/20", "2024-09-01 10:00"],
    [],
    ["wm-2024-102", "到店团购 周末双人餐 9.9 元抢", "本地生活", "到店事业部", "acquisition",
     "新用户、周边 3 公里用户", "折扣：双人餐 9.9 元", "短视频,信息流", "2024-08-03", "2024-08-25",
     "completed", "600000", "", "", "", "", "短视频投放 CTR 4.2%", "核销率只有 41%", "", ""],
    ["wm-2024-103", "外卖 暴雨天免配送费", "本地生活", "外卖事业部", "activation",
     "沉睡用户", "免配送费：暴雨预警日全场免配送费", "App 推送", "2024-02-30", "2024-09-30",
     "completed", "", "", "", "", "", "", "", "日期待核实", ""],
    ["", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", ""],
]

# Campaigns in one CSV, their metrics in a second file keyed by 活动编号 (or 活动名称).
MAIN_ROWS = [
    ["活动编号", "活动名称", "行业", "部门", "目标类型", "开始日期", "结束日期", "状态", "经验教训"],
    ["edu-2024-07", "暑期 9.9 元体验课：完课返现", "在线教育", "增长部", "转化", "2024-07-01",
     "2024-08-31", "已完成", "完课返现把完课率从 38% 拉到 61%，但返现用户正价课转化只有 6%。"],
    ["edu-2024-09", "秋季班 老带新：邀请 1 人得 1 节课", "在线教育", "增长部", "裂变", "2024-09-01",
     "2024-09-30", "已完成", "K 值 0.8，老用户更愿意邀请同班家长。"],
]
METRIC_ROWS = [
    ["活动编号", "活动名称", "指标", "单位", "基线", "目标", "实际"],
    ["edu-2024-07", "", "完课率", "%", "38", "55", "61"],
    ["edu-2024-07", "", "转化率", "%", "8", "10", "6"],
    ["", "秋季班 老带新：邀请 1 人得 1 节课", "K值", "", "0.5", "1", "0.8"],
    ["edu-2024-09", "", "获客成本", "元", "180", "120", "abc"],
    ["edu-2023-99", "", "GMV", "万元", "", "100", "90"],
]


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))


def write_xlsx(path: Path) -> None:
    """A workbook from a 母婴 team: banner, merged group headers, metrics sheet, messy rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "活动复盘"
    sheet.append(["2024 H1 母婴事业部 活动复盘汇总"])
    sheet.merge_cells("A1:T1")
    groups = ["基本信息", None, None, None, None, "五要素", None, None, None, None,
              "时间", None, "GMV（万元）", None, "转化率（%）", None, None, "复盘", None, None]
    subs = ["活动编号", "活动名称", "行业", "状态", "目标类型", "目标", "部门", "人群", "商品", "奖励",
            "开始日期", "结束日期", "目标", "实际", "基线", "目标", "实际", "做得好的", "问题", "备注"]
    sheet.append(groups)
    sheet.append(subs)
    for span in ("A2:E2", "F2:J2", "K2:L2", "M2:N2", "O2:Q2", "R2:T2"):
        sheet.merge_cells(span)
    for cell in (*sheet[2], *sheet[3]):
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center")
    sheet.append([
        "my-2024-01", "宝贝优选 春季奶粉囤货 拼团", "母婴", "已完成", "裂变", "拼团带新 2 万人", "用户增长部",
        "宝妈、新用户", "奶粉", "拼团价：3 人团立减 50（可叠加）", date(2024, 3, 1), date(2024, 3, 20),
        800, 910, 3.2, 4, 4.6, "- 团长激励到位", "- 库存预估不足，断货 2 天", "",
    ])
    sheet.append([None] * 20)
    sheet.append([
        "my-2024-02", "宝贝优选 母亲节 KOC 种草", "母婴", "已完成", "品牌", "", "品牌部",
        "宝妈", "护肤、湿巾", "赠品：晒单送湿巾", "2024.05.01", "2024.05.12",
        None, None, None, None, None, "KOC 笔记互动率 6.8%", "", "种草为主，不看 GMV",
    ])
    sheet.append([
        "my-2024-03", "宝贝优选 六一童装清仓", "母婴", "已完成", "GMV", "", "品类运营部",
        "价格敏感用户", "童装", "折扣：全场 5 折起", "2024-06-31", date(2024, 6, 1),
        300, 260, 2.5, 3, 2.1, "", "清仓节奏太晚", "",
    ])
    sheet.column_dimensions["B"].width = 32
    metrics = workbook.create_sheet("指标")
    metrics.append(["活动编号", "活动名称", "指标", "单位", "基线", "目标", "实际"])
    metrics.append(["my-2024-01", None, "新增用户数", "人", None, 20000, 23400])
    metrics.append([None, "宝贝优选 母亲节 KOC 种草", "互动率", "%", 4.1, 6, 6.8])
    metrics.append([None, "宝贝优选 母亲节 KOC 种草", "曝光量", "万次", None, 500, 620])
    metrics.append(["my-2099-99", None, "GMV", "万元", None, 1, 1])
    workbook.properties.creator = "母婴事业部"
    workbook.properties.created = datetime(2024, 7, 1)
    workbook.save(path)


MARKDOWN = """---
活动名称: 2024 618 生鲜大促：预售 + 次日达
external_id: sx-2024-618
行业: 生鲜
负责部门: 电商运营中心
业务线: 鲜丰到家
目标类型: GMV
状态: 已完成
开始日期: 2024-05-20
结束日期: 2024/6/18
预算: 300万
人群: 价格敏感用户、宝妈、白领
渠道: [小程序, App 推送, 企业微信社群]
标签: 618；预售；次日达
奖励:
  - 类型: 满减券
    说明: 满 99 减 15
    可叠加: 是
  - type: 积分
    detail: 预售定金翻倍抵扣
    stackable: false
作者: 张敏
---

# 2024 618 生鲜大促复盘

> 本文为复盘会纪要整理版。

## 一、背景与目标

618 是上半年最大的节点，今年首次尝试生鲜**预售 + 次日达**：提前锁定订单，按预售量备货，降低损耗。

## 二、数据成效

| 指标 | 单位 | 基线 | 目标 | 实际 |
| --- | --- | --- | --- | --- |
| GMV | 万元 | 3,200 | 4,000 | 4,380 |
| 损耗率 | % | 6.5 | 4 | 3.8 |
| 次日达履约率 | % | 91 | 97 | 95.2 |

预售订单占比 37%，带来了备货精度的明显提升。

## 三、做得好的地方

- 预售锁单后按量备货，损耗率从 6.5% 降到 3.8%
- 企微社群团长提前 3 天预热，预售首日 GMV 占比 18%

## 四、问题与原因

- 次日达在 6.17–6.18 爆单，3 个前置仓超负荷（资源缺口）
- 部分预售用户忘记付尾款，尾款支付率 81%（执行偏差：尾款提醒只推了一次）

## 五、经验沉淀

预售 + 按量备货是生鲜大促降损耗最有效的手段；尾款提醒至少三次（前一天、当天上午、截止前 2 小时）。

## 六、下一步建议

1. 大促前按预售量给前置仓做弹性人力排班
2. 尾款提醒接入企微一对一消息

## 假设验证

- [已验证] 预售锁单能把损耗率降到 4% 以下（依据：实际 3.8%）
- [被推翻] 尾款提醒推一次就够（依据：尾款支付率 81%，低于 90% 目标）

## 附：执行排期

| 日期 | 事项 |
| --- | --- |
| 5.20 | 预售开启 |
| 6.1 | 尾款开启 |
"""

MARKDOWN_EN = """---
title: Back-to-school referral sprint
industry: 在线教育
department: Growth
goal_type: referral
start_date: 2024-08-15
end_date: 2024-09-05
status: completed
audience: 宝妈, 大学生
metrics:
  - name: K值
    target: 1.0
    actual: 1.3
---

## Background

Invite a friend, both get a free trial class. Run in parent WeChat groups.

## What went well

- Parents in the same class invited each other: K 1.3

## Problems

- Trial-class slots ran out in week two

## Lessons learned

Referral works best inside existing class groups.

## Next steps

Reserve 30% more trial slots before the sprint.
"""


def write_docx(path: Path) -> None:
    """A Word retro as teams write them: title, 基本信息 lines, numbered sections, a table.

    It does not say the industry: the import page opens it in the form to complete.
    """
    from docx import Document

    document = Document()
    document.core_properties.author = "会员运营中心"
    document.core_properties.created = datetime(2024, 11, 20)
    document.add_heading("2024 双十一 沉睡会员召回 复盘报告", level=0)
    document.add_paragraph("负责部门：会员运营中心")
    document.add_paragraph("活动时间：2024.10.20-2024.11.12")
    document.add_paragraph("目标类型：召回")
    document.add_paragraph("活动目标：30 天内召回 5 万名 90 天未下单用户，首单转化率 12%")
    document.add_heading("一、活动背景", level=1)
    document.add_paragraph(
        "双十一前，90 天未下单的沉睡会员已占会员总数 41%。本次用满减券 + 企微社群分层召回。"
    )
    document.add_heading("二、数据成效", level=1)
    table = document.add_table(rows=1, cols=5)
    for cell, text in zip(table.rows[0].cells, ["指标", "单位", "基线", "目标", "实际"], strict=True):
        cell.text = text
    for row in (["召回人数", "人", "", "50000", "56200"], ["转化率", "%", "8", "12", "9.6"],
                ["获客成本", "元", "40", "35", "52"]):
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            cell.text = text
    document.add_heading("三、做得好的地方", level=1)
    document.add_paragraph("企微社群分层触达，打开率 38%", style="List Bullet")
    document.add_paragraph("高价值沉睡会员单独配 40 元券，召回率 14%", style="List Bullet")
    document.add_heading("四、问题与原因", level=1)
    document.add_paragraph("短信通道被限流，触达延迟 2 天（执行偏差）", style="List Bullet")
    document.add_heading("五、经验沉淀", level=1)
    document.add_paragraph("连续订购立减比限时优惠对复购的拉动高 27%。")
    document.add_heading("六、下一步建议", level=1)
    document.add_paragraph("大促前 2 周报备短信通道。", style="List Number")
    document.save(str(path))


def write_pptx(path: Path) -> None:
    """A PowerPoint retro deck: cover, 活动信息, 数据 table, then one slide per retro section."""
    from pptx import Presentation
    from pptx.util import Inches, Pt

    deck = Presentation()
    deck.core_properties.author = "社群运营组"
    deck.core_properties.created = datetime(2024, 6, 5)
    cover = deck.slides.add_slide(deck.slide_layouts[0])
    cover.shapes.title.text = "宝贝优选 六一 社群裂变 任务宝复盘"
    cover.placeholders[1].text = "社群运营组 · 2024.05.20-2024.06.01"

    def bullets(title: str, lines: list[str], notes: str = "") -> None:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        frame = slide.placeholders[1].text_frame
        frame.text = lines[0]
        for line in lines[1:]:
            frame.add_paragraph().text = line
        if notes:
            slide.notes_slide.notes_text_frame.text = notes

    bullets("活动信息", ["行业：母婴", "负责部门：社群运营组", "目标类型：裂变",
                        "人群：宝妈、孕期家庭", "渠道：企业微信社群、小程序", "奖励：任务宝 邀 3 人得湿巾一包"])
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "数据成效"
    rows = [["指标", "目标", "实际"], ["K值", "1.5", "2.1"], ["新增用户数", "20000", "31800"],
            ["7日留存", "35%", "28%"]]
    shape = slide.shapes.add_table(len(rows), 3, Inches(1), Inches(1.8), Inches(8), Inches(2))
    for r, row in enumerate(rows):
        for c, text in enumerate(row):
            shape.table.cell(r, c).text = text
    note = slide.shapes.add_textbox(Inches(1), Inches(4.3), Inches(8), Inches(0.6))
    note.text_frame.text = "新增超目标 59%，但 7 日留存低于目标。"
    note.text_frame.paragraphs[0].runs[0].font.size = Pt(14)
    bullets("做得好的", ["任务宝海报 A/B：宝宝实拍图比插画 CTR 高 20%", "群内晒单带动二次分享"])
    bullets("问题", ["羊毛号集中领湿巾，约 9% 新用户 7 天内无任何行为", "湿巾库存第 5 天告急"])
    bullets("经验沉淀", ["裂变奖励要绑定首单，而不是绑定注册"])
    bullets("下一步建议", ["奖励改为首单后发放", "上线前接入风控名单"], notes="复盘会：6 月 5 日，参会 8 人")
    deck.save(str(path))


def main() -> None:
    (HERE / "campaigns.json").write_text(
        json.dumps(JSON_CAMPAIGNS, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    (HERE / "campaigns.jsonl").write_text("\n".join(JSONL_LINES) + "\n", encoding="utf-8")
    write_csv(HERE / "campaigns_gbk.csv", GBK_ROWS, "gbk")
    write_csv(HERE / "campaigns_bom.csv", BOM_ROWS, "utf-8-sig")
    write_csv(HERE / "campaigns_main.csv", MAIN_ROWS, "utf-8")
    write_csv(HERE / "campaigns_main_metrics.csv", METRIC_ROWS, "utf-8")
    write_xlsx(HERE / "retro_merged_header.xlsx")
    (HERE / "retro_618.md").write_text(MARKDOWN, encoding="utf-8")
    (HERE / "retro_en.md").write_text(MARKDOWN_EN, encoding="utf-8")
    write_docx(HERE / "retro_double11.docx")
    write_pptx(HERE / "retro_deck.pptx")


if __name__ == "__main__":
    main()
