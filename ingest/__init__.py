"""Importers and exporters of campaign files (JSON, CSV, Excel, Markdown, Word, PowerPoint)."""
