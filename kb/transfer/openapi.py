"""The OpenAPI path items of the import and export API, merged into the document by kb.api.openapi."""

from __future__ import annotations

from typing import Any

from ingest.readers import FORMATS
from kb.transfer.exports import EXPORT_FORMATS, MIMETYPES
from kb.transfer.imports import OUTCOME_LABELS


def paths() -> dict[str, Any]:
    """Return ``POST /api/v1/imports`` and ``GET /api/v1/campaigns/export.{fmt}``."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    row = {
        "type": "object",
        "properties": {
            "row": {
                "type": "integer",
                "description": "行号：表格中的行（表头为第 1 行）、JSON Lines 的行、JSON 数组中的第几项",
            },
            "line": {"type": "integer", "description": "JSON 中该项开始的行"},
            "title": {"type": "string"},
            "external_id": {"type": ["string", "null"]},
            "id": {"type": ["integer", "null"], "description": "写入（或将写入）的活动 id"},
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "拒绝原因：字段路径（如 metrics.0.target）→ 中文说明",
            },
        },
        "required": ["row", "title"],
    }
    report = {
        "type": "object",
        "properties": {
            "format": {"type": "string", "enum": list(FORMATS)},
            "dry_run": {"type": "boolean"},
            "counts": {
                "type": "object",
                "properties": {k: {"type": "integer"} for k in OUTCOME_LABELS},
            },
            **{k: {"type": "array", "items": row} for k in OUTCOME_LABELS},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "error": {"type": "string", "description": "文件中途无法继续读取时的说明"},
        },
        "required": ["format", "dry_run", "counts", *OUTCOME_LABELS, "warnings"],
    }
    list_params = [
        {"name": "industry", "in": "query", "schema": {"type": "string"}},
        {"name": "goal_type", "in": "query", "schema": {"$ref": "#/components/schemas/GoalType"}},
        {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/Status"}},
        {"name": "date_from", "in": "query", "schema": {"type": "string", "format": "date"}},
        {"name": "date_to", "in": "query", "schema": {"type": "string", "format": "date"}},
    ]
    return {
        "/api/v1/imports": {
            "post": {
                "summary": "导入活动 (Import campaigns from a file or a JSON list; dry_run previews)",
                "operationId": "importCampaigns",
                "parameters": [
                    {"name": "dry_run", "in": "query", "schema": {"type": "boolean"}},
                    {
                        "name": "format",
                        "in": "query",
                        "schema": {"type": "string", "enum": list(FORMATS)},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {"type": "string", "format": "binary"},
                                    "metrics": {
                                        "type": "string",
                                        "format": "binary",
                                        "description": "可选：CSV/Excel 的单独指标表",
                                    },
                                    "format": {"type": "string", "enum": list(FORMATS)},
                                    "dry_run": {"type": "boolean"},
                                },
                                "required": ["file"],
                            }
                        },
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/CampaignIn"},
                                    },
                                    {
                                        "type": "object",
                                        "properties": {
                                            "campaigns": {
                                                "type": "array",
                                                "items": {
                                                    "$ref": "#/components/schemas/CampaignIn"
                                                },
                                            },
                                            "dry_run": {"type": "boolean"},
                                        },
                                        "required": ["campaigns"],
                                    },
                                ]
                            }
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "逐行结果：新建、更新、未变、拒绝（含行号与字段错误）",
                        "content": {"application/json": {"schema": report}},
                    },
                    **{
                        str(status): {"description": "错误", "content": error}
                        for status in (400, 413, 415, 422)
                    },
                },
            }
        },
        "/api/v1/campaigns/export.{fmt}": {
            "get": {
                "summary": "导出活动列表 (Export the filtered campaign list as CSV, Excel or JSON Lines)",
                "operationId": "exportCampaigns",
                "parameters": [
                    {
                        "name": "fmt",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(EXPORT_FORMATS)},
                    },
                    *list_params,
                ],
                "responses": {
                    "200": {
                        "description": "导出文件（可再次导入）",
                        "content": {
                            mimetype.split(";")[0]: {
                                "schema": {"type": "string", "format": "binary"}
                            }
                            for mimetype in MIMETYPES.values()
                        },
                    },
                    **{
                        str(status): {"description": "错误", "content": error}
                        for status in (404, 422)
                    },
                },
            }
        },
    }
