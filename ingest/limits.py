"""Budgets that bound what one file can make a reader do, checked before or while it is parsed.

A small file must not buy a large amount of work: a zip (every Office file is one) is checked by
its directory before any member is inflated; YAML front matter may not use anchors and aliases
(``safe_load`` expands them: a 434-byte document built a 312 MB value); a sheet stops at a row
and cell budget instead of reading on. The web form, the API and the CLI share these readers, so
they share the limits.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

import yaml

from ingest.errors import FileReadError

# Office files of real retros inflate to a few MB; 64 MiB leaves room for decks with images.
MAX_UNCOMPRESSED_BYTES = 64 * 1024 * 1024
# XML compresses about 5-20×; a member above 1 MiB that claims more than 100× is a bomb.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_FROM_BYTES = 1024 * 1024
MAX_ZIP_MEMBERS = 5_000
# YAML front matter is a handful of fields; anything larger is not front matter.
MAX_FRONT_MATTER_CHARS = 64 * 1024
# One file's sheet: rows and cells read before the reader gives up (a campaign is one row).
MAX_ROWS = 50_000
MAX_CELLS = 2_000_000


def check_zip(binary: IO[bytes], what: str) -> None:
    """Refuse a zip whose members would inflate past the budget; leave ``binary`` at its start."""
    start = binary.tell()
    try:
        with zipfile.ZipFile(binary) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileReadError(f"无法读取 {what}：文件已损坏或不是 zip 格式（{exc}）") from None
    finally:
        binary.seek(start)
    if len(members) > MAX_ZIP_MEMBERS:
        raise FileReadError(f"{what}包含 {len(members)} 个内部文件，超过上限 {MAX_ZIP_MEMBERS}")
    total = 0
    for member in members:
        total += member.file_size
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size >= RATIO_CHECK_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise FileReadError(
                f"{what}中的 {member.filename} 压缩比异常（{ratio:.0f} 倍），疑似压缩炸弹，已拒绝"
            )
    if total > MAX_UNCOMPRESSED_BYTES:
        raise FileReadError(
            f"{what}解压后共 {total // (1024 * 1024)} MB，超过上限 "
            f"{MAX_UNCOMPRESSED_BYTES // (1024 * 1024)} MB"
        )


_BOOL, _INT, _FLOAT = (f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float"))


def load_front_matter(text: str) -> Any:
    """Parse YAML front matter without anchors or aliases; raise FileReadError otherwise."""
    if len(text) > MAX_FRONT_MATTER_CHARS:
        raise FileReadError(
            f"front matter 过长（{len(text)} 个字符，上限 {MAX_FRONT_MATTER_CHARS}）："
            "正文请写在第二个 --- 之后"
        )
    # Events come from the parser before anything is composed: an alias is refused before it
    # could be expanded, in time linear in the text.
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            mark = event.start_mark
            where = f"第 {mark.line + 2} 行" if mark is not None else ""
            raise FileReadError(
                f"front matter {where}使用了 YAML 锚点或别名（& 或 *），不支持：请直接写出值"
            )
    return yaml.load(text, Loader=_FrontMatterLoader)  # noqa: S506  # a SafeLoader, narrowed


class _FrontMatterLoader(yaml.SafeLoader):
    """YAML 1.1's SafeLoader with YAML 1.2's plain scalars: only true/false are booleans, only
    decimal digits (no leading zero) and 0x… are integers.

    Under 1.1 "external_id: 0123" was the octal 83, "tags: no" the boolean False and "12:30"
    the integer 750: an id that never matches its campaign again, a tag "False".
    """


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FrontMatterLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_FrontMatterLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_FrontMatterLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


def bounded_rows(rows: Iterable[list[Any]], what: str) -> Iterator[list[Any]]:
    """Yield ``rows`` until the row or cell budget is spent; then raise FileReadError."""
    cells = 0
    for count, row in enumerate(rows, start=1):
        cells += len(row)
        if count > MAX_ROWS:
            raise FileReadError(f"{what}超过 {MAX_ROWS} 行上限：请拆成几个文件导入")
        if cells > MAX_CELLS:
            raise FileReadError(
                f"{what}第 {count} 行时单元格已超过 {MAX_CELLS} 个上限：请删去空列或拆分文件"
            )
        yield row
