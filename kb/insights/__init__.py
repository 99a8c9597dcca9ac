"""Insights: warning signals, lessons, playbooks and the portfolio."""
