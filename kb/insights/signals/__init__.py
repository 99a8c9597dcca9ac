"""Warning signals in a campaign's numbers: data bubbles, missed targets, rising costs and risks.

``registry`` holds one ``Rule`` per signal (code, label, settings, explanation, check);
``rules`` registers the built-in ones; ``engine`` judges metric lists and stored campaigns.
Everything that lists signals reads the registry: settings, search filter, pages, portfolio, API.
"""

from kb.insights.signals.engine import (
    campaign_signals,
    campaigns_with_signals,
    current_thresholds,
    evaluate,
    signals_by_campaign,
)
from kb.insights.signals.registry import (
    RULES,
    Rule,
    Setting,
    Severity,
    Signal,
    SignalCode,
    SignalThresholds,
    register,
    rule,
    setting_name,
    signal_codes,
    signal_labels,
    signal_settings,
    unregister,
)

__all__ = [
    "RULES",
    "Rule",
    "Setting",
    "Severity",
    "Signal",
    "SignalCode",
    "SignalThresholds",
    "campaign_signals",
    "campaigns_with_signals",
    "current_thresholds",
    "evaluate",
    "register",
    "rule",
    "setting_name",
    "signal_codes",
    "signal_labels",
    "signal_settings",
    "signals_by_campaign",
    "unregister",
]
