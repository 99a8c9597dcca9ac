"""Bounded readers: a small hostile file is refused quickly instead of taking a worker down."""

from __future__ import annotations

import copy
import io
import time
import tracemalloc
import zipfile

import openpyxl
import pytest

from ingest import limits
from ingest.errors import FileReadError
from ingest.jsonfile import JsonLinesReader, JsonReader
from ingest.markdown import parse_markdown, split_front_matter
from ingest.office import docx_markdown, pptx_markdown
from ingest.tabular import CsvReader, XlsxReader

# The 434-byte front matter of the red team's report: nine levels of nine aliases each.
ALIAS_BOMB = "\n".join(
    ["---", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{','.join(['*' + chr(ord('a') + i - 1)] * 9)}]"
        for i in range(1, 9)
    ]
    + ["title: *i", "---", "正文"]
)


def _bounded(call: object) -> tuple[float, int]:
    """Run ``call``, expecting FileReadError; return the seconds it takes and peak bytes allocated.

    The peak comes from one run under tracemalloc; the time from three runs without it (tracing
    slows every allocation several times over), the fastest counting: a refusal that is bounded
    is fast every time, so noise from other processes on the machine is all the others add.
    """
    tracemalloc.start()
    with pytest.raises(FileReadError) as raised:
        call()  # type: ignore[operator]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "\n" not in raised.value.message.strip()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(FileReadError):
            call()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times), peak


def test_yaml_aliases_are_refused_before_expansion() -> None:
    assert len(ALIAS_BOMB.encode()) < 600
    seconds, peak = _bounded(lambda: split_front_matter(ALIAS_BOMB))
    assert seconds < 1.0
    assert peak < 100 * 1024 * 1024


def test_the_refusal_says_what_to_do_in_chinese() -> None:
    with pytest.raises(FileReadError, match="锚点或别名"):
        split_front_matter("---\nx: &x 1\ny: *x\n---\n")


def test_plain_front_matter_still_reads() -> None:
    meta, body = split_front_matter("---\ntitle: 618 复盘\ntags: [母婴, 拼团]\n---\n正文")
    assert meta == {"title": "618 复盘", "tags": ["母婴", "拼团"]}
    assert body == "正文"


def _rewound(buffer: io.BytesIO) -> io.BytesIO:
    buffer.seek(0)
    return buffer


def _zip_bomb(member: str) -> io.BytesIO:
    """A valid zip whose one member inflates 2 MiB of zeros from a few KB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(member, b"\0" * (2 * 1024 * 1024))
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    ("member", "read"),
    [
        ("xl/worksheets/sheet1.xml", lambda b: list(XlsxReader(b).rows())),
        ("word/document.xml", docx_markdown),
        ("ppt/slides/slide1.xml", pptx_markdown),
    ],
)
def test_zip_bombs_are_refused_from_the_directory(member: str, read: object) -> None:
    bomb = _zip_bomb(member)
    assert len(bomb.getvalue()) < 20_000
    seconds, peak = _bounded(lambda: read(_rewound(bomb)))  # type: ignore[operator]
    assert seconds < 1.0
    assert peak < 100 * 1024 * 1024


def test_a_zip_larger_than_the_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_UNCOMPRESSED_BYTES", 1024)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("word/document.xml", "x" * 4096)
    buffer.seek(0)
    with pytest.raises(FileReadError, match="解压后"):
        docx_markdown(buffer)


def _many_paragraphs(count: int) -> io.BytesIO:
    import docx

    document = docx.Document()
    document.add_heading("双十一 复盘", level=1)
    last = document.add_paragraph("第 0 段")._p
    # Copies of one paragraph element: python-docx's add_paragraph would take longer than the read.
    for i in range(1, count):
        clone = copy.deepcopy(last)
        clone.xpath("./w:r/w:t")[0].text = f"第 {i} 段"
        last.addnext(clone)
        last = clone
    buffer = io.BytesIO()
    document.save(buffer)
    buffer.seek(0)
    return buffer


def test_a_docx_of_20000_paragraphs_reads_in_linear_time() -> None:
    source = _many_paragraphs(20_000)
    started = time.perf_counter()
    _title, markdown = docx_markdown(source)
    assert time.perf_counter() - started < 5.0
    assert "## 双十一 复盘" in markdown
    assert "第 19999 段" in markdown


def test_heading_styles_are_still_read() -> None:
    import docx

    document = docx.Document()
    document.add_heading("活动复盘", level=0)
    document.add_heading("问题与原因", level=1)
    document.add_paragraph("券没有叠加上限", style="List Bullet")
    buffer = io.BytesIO()
    document.save(buffer)
    buffer.seek(0)
    title, markdown = docx_markdown(buffer)
    assert title == "活动复盘"
    assert "## 问题与原因" in markdown
    assert "- 券没有叠加上限" in markdown


def test_external_entities_are_a_read_error_not_a_crash() -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("x")
    buffer = io.BytesIO()
    document.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "word/document.xml":
                data = data.replace(
                    b"?>",
                    b'?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;'
                    b'&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
                    1,
                ).replace(b">x<", b">&c;<")
            archive.writestr(item, data)
    hostile.seek(0)
    try:
        _title, markdown = docx_markdown(hostile)
    except FileReadError:
        return
    # Parsed without expanding entities: no amplified text reaches the retro.
    assert "aaaaaaaaaa" * 10 not in markdown


def test_csv_rows_past_the_budget_are_a_read_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_ROWS", 5)
    lines = ["活动名称,行业,目标类型,开始日期,结束日期"]
    lines += [f"活动{i},母婴,拉新,2025-01-01,2025-01-02" for i in range(10)]
    reader = CsvReader(io.BytesIO("\n".join(lines).encode()))
    with pytest.raises(FileReadError, match="5 行上限"):
        list(reader.rows())


def _json_rows(reader_class: type, text: str) -> list:
    return list(reader_class(io.BytesIO(text.encode())).rows())


@pytest.mark.parametrize(
    "text",
    [
        "[" + "[" * 100_000 + "]" * 100_000 + "]",  # an array whose one item nests
        '{"title": ' + "[" * 100_000 + "]" * 100_000 + "}",  # one object
    ],
)
def test_json_nested_past_the_decoder_is_refused_in_chinese(text: str) -> None:
    with pytest.raises(FileReadError, match="JSON 嵌套过深"):
        _json_rows(JsonReader, text)


def test_a_json_lines_row_nested_too_deeply_is_refused_alone() -> None:
    good = '{"title": "好行"}'
    rows = _json_rows(JsonLinesReader, "\n".join([good, "[" * 100_000 + "]" * 100_000, good]))
    assert [row.row for row in rows] == [1, 2, 3]
    assert rows[1].errors == {"": "JSON 嵌套过深，无法读取"}
    assert not rows[0].errors
    assert not rows[2].errors


@pytest.mark.parametrize(
    "line",
    [
        "*" * 20_000,  # a label's bold marks before a colon that never comes (minutes before)
        " " * 20_000 + "x",
        "## " + "#" * 20_000 + "x",  # a heading's closing #s
        "# a" + " " * 20_000 + "b {#lessons}",
        "- **" + "行业 " * 5_000,
    ],
)
def test_a_long_markdown_line_parses_in_linear_time(line: str) -> None:
    started = time.perf_counter()
    parse_markdown(line + "\n\n## 经验教训\n" + line)
    # Linear: a few ms here; the backtracking patterns took seconds at 2 KB, minutes at 10 KB.
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("text", "title", "industry"),
    [
        ("# 标题 ##\n- **行业**：母婴", "标题", "母婴"),
        ("# 标题\n行业: 美妆", "标题", "美妆"),
        ("# 标题\n| 行业 | 鲜花 |", "标题", "鲜花"),
    ],
)
def test_headings_and_labels_read_as_before(text: str, title: str, industry: str) -> None:
    parsed = parse_markdown(text)
    assert parsed.data.get("title", parsed.title) == title
    assert parsed.data["industry"] == industry


def _xlsx_with_bad_cell(rows: int, bad_row: int) -> bytes:
    """A workbook of ``rows`` campaigns whose budget cell in ``bad_row`` holds <v>abc</v>."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["活动名称", "预算（元）"])
    for i in range(rows):
        sheet.append([f"活动{i}", 1000 + i])
    out = io.BytesIO()
    book.save(out)
    source, patched = zipfile.ZipFile(io.BytesIO(out.getvalue())), io.BytesIO()
    with zipfile.ZipFile(patched, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(f"<v>{1000 + bad_row - 2}</v>".encode(), b"<v>abc</v>")
            target.writestr(item, data)
    return patched.getvalue()


def test_a_malformed_excel_cell_is_a_read_error_naming_its_row() -> None:
    rows = XlsxReader(io.BytesIO(_xlsx_with_bad_cell(40, 30))).rows()
    read = []
    with pytest.raises(FileReadError, match="第 30 行：单元格格式有误") as raised:
        read.extend(row.row for row in rows)
    assert read == list(range(2, 30))  # every row before it
    assert "之后的行未读取" in raised.value.message


def test_a_json_number_of_thousands_of_digits_is_a_read_error() -> None:
    item = '{"title": "a", "budget_cny": ' + "9" * 5000 + "}"
    with pytest.raises(FileReadError, match="数字位数过多"):
        _json_rows(JsonReader, "[" + item + "]")
    with pytest.raises(FileReadError, match="数字位数过多"):
        _json_rows(JsonReader, item)


def test_front_matter_nested_past_the_parser_is_refused_in_chinese() -> None:
    text = "---\ntitle: " + "[" * 5_000 + "]" * 5_000 + "\n---\n正文"
    with pytest.raises(FileReadError, match="front matter 嵌套过深"):
        split_front_matter(text)


def test_a_csv_quote_that_never_closes_is_named_not_swallowed() -> None:
    text = '活动名称,预算（元）\n活动1,100\n活动2,"200\n活动3,300\n活动4,400\n'
    with pytest.raises(FileReadError, match="第 3 行的引号没有闭合"):
        list(CsvReader(io.BytesIO(text.encode())).rows())  # not 活动3, 活动4 inside 活动2's cell


def test_a_closed_multi_line_csv_cell_is_still_read() -> None:
    text = '活动名称,经验教训\n活动1,"第一行\n第二行"\n活动2,好\n'
    rows = list(CsvReader(io.BytesIO(text.encode())).rows())
    assert [row.data["lessons"] for row in rows] == ["第一行\n第二行", "好"]


def test_an_excel_percent_cell_reads_as_the_sheet_shows_it() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["活动名称", "转化率实际", "转化率目标"])
    sheet.append(["活动1", 0.042, 5])  # shown as 4.2%; the target typed as a plain 5
    sheet["B2"].number_format = "0.0%"
    out = io.BytesIO()
    book.save(out)
    (row,) = list(XlsxReader(io.BytesIO(out.getvalue())).rows())
    (metric,) = row.data["metrics"]
    assert (metric["actual"], metric["target"]) == (4.2, 5.0)  # not 0.042


def test_front_matter_keeps_ids_and_words_as_written() -> None:
    meta, _ = split_front_matter(
        "---\nexternal_id: 0123\ntags: [no, 007]\ntime: 12:30\nbudget_cny: 350000\n"
        "stackable: true\nstart_date: 2024-03-01\n---\n正文"
    )
    # YAML 1.1 read these as the octal 83, the boolean False, 7 and the integer 750.
    assert meta["external_id"] == "0123"
    assert meta["tags"] == ["no", "007"]
    assert meta["time"] == "12:30"
    assert (meta["budget_cny"], meta["stackable"]) == (350000, True)
    assert str(meta["start_date"]) == "2024-03-01"


def test_columns_holding_the_same_field_are_named() -> None:
    text = "活动名称,经验教训,lessons,经验\nA,经验A,经验B,经验C\n"
    reader = CsvReader(io.BytesIO(text.encode()))
    (row,) = list(reader.rows())
    assert row.data["lessons"] == "经验A"
    assert reader.warnings == [
        "列 “经验教训”、“lessons”、“经验” 都对应“经验教训”：每行只取第一个有内容的列，其余列的内容未导入"
    ]
