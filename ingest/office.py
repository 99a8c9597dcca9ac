"""Read a retro from Word (.docx) or PowerPoint (.pptx): text in reading order, then as Markdown.

The whole text becomes one document of the campaign (kind strategy for Word, deck for PowerPoint);
the title, "行业：母婴"-style lines, a metrics table and the sections whose headings are known
(做得好的, 问题, 经验, 建议 …) fill the fields. What a file does not say (industry, dates…) the
user completes in the form, so such a campaign is usually a draft, not a finished record.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from typing import IO, Any

from ingest.errors import FileReadError
from ingest.limits import check_zip
from ingest.markdown import parse_markdown
from ingest.records import SourceRow
from kb.campaigns.schemas import MARKDOWN_MAX

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.IGNORECASE)


def _cell_text(text: str) -> str:
    return " / ".join(part.strip() for part in text.splitlines() if part.strip()).replace("|", "｜")


def _table_markdown(rows: list[list[str]]) -> list[str]:
    rows = [[_cell_text(c) for c in row] for row in rows if any(c.strip() for c in row)]
    if not rows:
        return []
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return ["", *lines, ""]


def docx_markdown(binary: IO[bytes]) -> tuple[str, str]:
    """Return (title, Markdown) of a Word document: paragraphs and tables in body order."""
    import docx  # imported here: only this format needs it
    from docx.table import Table

    check_zip(binary, "Word 文件")
    try:
        document = docx.Document(binary)
    except (zipfile.BadZipFile, KeyError, ValueError, SyntaxError) as exc:
        # SyntaxError: lxml's XMLSyntaxError, also for entity loops and external entities.
        raise FileReadError(f"无法读取 Word 文件（仅支持 .docx）：{exc}") from None
    title = (document.core_properties.title or "").strip()
    style_names = _style_names(document)
    lines: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines += _table_markdown([[cell.text for cell in row.cells] for row in block.rows])
            continue
        text = block.text.strip()
        if not text:
            continue
        style = style_names.get(block._p.style, style_names[None])
        heading = _HEADING_STYLE.match(style)
        if style.lower() == "title" or style == "标题":
            title = title or text
            lines += ["", f"# {text}", ""]
        elif heading:
            lines += ["", "#" * (int(heading[1]) + 1) + " " + text, ""]
        elif "list" in style.lower() or _numbered(block):
            lines.append(f"- {text}")
        else:
            lines += [text, ""]
    return title, "\n".join(lines)


def _style_names(document: Any) -> dict[str | None, str]:
    """Map each paragraph style id to its name once, None to the default paragraph style's.

    ``Paragraph.style`` looks the default style up by scanning every style, once per paragraph:
    quadratic in the document (20,000 short paragraphs took 39-73 s). One pass here is linear.
    """
    from docx.enum.style import WD_STYLE_TYPE

    names: dict[str | None, str] = {None: ""}
    for style in document.styles.element.style_lst:
        name = style.name_val or ""
        names[style.styleId] = name
        if style.type == WD_STYLE_TYPE.PARAGRAPH and style.default:
            names[None] = name
    return names


def _numbered(paragraph: Any) -> bool:
    properties = paragraph._p.pPr
    return properties is not None and properties.numPr is not None


def pptx_markdown(binary: IO[bytes]) -> tuple[str, str]:
    """Return (title, Markdown) of a deck: one section per slide, shapes top to bottom, left to right."""
    from pptx import Presentation

    check_zip(binary, "PowerPoint 文件")
    try:
        deck = Presentation(binary)
    except (zipfile.BadZipFile, KeyError, ValueError, SyntaxError) as exc:
        raise FileReadError(f"无法读取 PowerPoint 文件（仅支持 .pptx）：{exc}") from None
    title = (deck.core_properties.title or "").strip()
    lines: list[str] = []
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        slide_title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        slide_title = " ".join(slide_title.split())
        if number == 1 and slide_title:
            title = title or slide_title
        lines += ["", f"## {slide_title or f'第 {number} 页'}", ""]
        shapes = [
            s for s in slide.shapes if title_shape is None or s.shape_id != title_shape.shape_id
        ]
        for shape in _reading_order(shapes):
            lines += _shape_lines(shape)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            text = notes.text.strip() if notes is not None else ""
            if text:
                lines += ["", *[f"> {line}" for line in text.splitlines() if line.strip()]]
    body = "\n".join(lines)
    return title, (f"# {title}\n{body}" if title else body)


def _reading_order(shapes: Any) -> list[Any]:
    # Rows of a slide are read top to bottom; shapes within ~half a centimetre count as one row.
    return sorted(shapes, key=lambda s: ((s.top or 0) // 180_000, s.left or 0))


def _shape_lines(shape: Any) -> Iterator[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        for inner in _reading_order(shape.shapes):
            yield from _shape_lines(inner)
        return
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
        yield from _table_markdown(rows)
        return
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        paragraphs = [p for p in shape.text_frame.paragraphs if p.text.strip()]
        for paragraph in paragraphs:
            text = " ".join(paragraph.text.split())
            yield ("  " * paragraph.level + "- " + text) if len(paragraphs) > 1 else text
        yield ""


class OfficeReader:
    """One campaign (usually a draft) from a .docx or .pptx retro."""

    def __init__(self, binary: IO[bytes], kind: str, filename: str = "") -> None:
        self.binary = binary
        self.kind = kind
        self.filename = filename
        self.warnings: list[str] = []
        self._done = 0

    def position(self) -> tuple[int, int]:
        return self._done, 1

    def rows(self) -> Iterator[SourceRow]:
        convert = docx_markdown if self.kind == "docx" else pptx_markdown
        title, text = convert(self.binary)
        text = re.sub(r"\n{3,}", "\n\n", text)
        parsed = parse_markdown(text, meta={"title": title} if title else None)
        self.warnings += parsed.warnings
        data = parsed.data
        data.pop("documents", None)  # the whole text is kept below, other sections included
        body = text.strip()
        if len(body) > MARKDOWN_MAX:
            body = body[:MARKDOWN_MAX]
            self.warnings.append(f"原文超过 {MARKDOWN_MAX} 字，文档只保留了前 {MARKDOWN_MAX} 字")
        label = "Word 原文" if self.kind == "docx" else "PPT 原文"
        name = parsed.title or self.filename or label
        data["documents"] = [
            {
                "title": f"{name}（{label}）"[:200],
                "kind": "strategy" if self.kind == "docx" else "deck",
                "body": body,
            }
        ]
        self._done = 1
        yield SourceRow(row=1, data=data)
