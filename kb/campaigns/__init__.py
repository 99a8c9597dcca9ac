"""Campaigns: the record, its validation, services, history, pages and metric catalog."""
