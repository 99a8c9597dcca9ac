"""Searching: campaign text for the indexes, the indexer and the search service."""
