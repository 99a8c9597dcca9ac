"""Drafts: similar cases, collisions and the forecast for a campaign being planned."""
