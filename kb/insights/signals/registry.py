"""The registry of warning-signal rules: one ``Rule`` per signal, read by everything that lists them.

A rule is registered by decorating its function with ``@rule(...)`` (see ``rules.py``): its code,
Chinese label, explanation and settings then reach the settings (``KB_SIGNAL_*``), the search
filter's allowed codes, the pages' labels, the portfolio's counts and the API document, with no
other edit. The dict registry follows CTFd's registry of challenge kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kb.vocab import Severity as Severity  # one home for it; kb.insights.signals re-exports it

if TYPE_CHECKING:
    from kb.insights.signals.readings import Reading

# A rule's code: a registered key of ``RULES`` (checked where codes come in, e.g. the search filter).
SignalCode = str


@dataclass(frozen=True, slots=True)
class Setting:
    """One threshold of a rule: its default and what it means, in Chinese (settings page, README)."""

    default: float
    description: str


@dataclass(frozen=True, slots=True)
class Signal:
    """A fired rule: what, how bad, and why in plain words with the campaign's numbers."""

    code: SignalCode
    severity: Severity
    explanation: str
    rule: str
    metrics: tuple[str, ...]

    @property
    def label(self) -> str:
        """Return the short Chinese name of the rule."""
        return RULES[self.code].label

    def to_dict(self) -> dict[str, Any]:
        """Return the API shape."""
        return {
            "code": self.code,
            "label": self.label,
            "severity": self.severity,
            "explanation": self.explanation,
            "rule": self.rule,
            "metrics": list(self.metrics),
        }


Check = Callable[["Sequence[Reading]", "SignalThresholds"], list[Signal]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A warning-signal rule: code, Chinese label and explanation, its settings and its check.

    ``settings`` maps a short name ("cost_rise_pct") to its ``Setting``; the deployment sets it
    as ``KB_SIGNAL_<NAME>``. ``finished_only``: judged only once the campaign is over (a running
    campaign has not missed its target yet); other rules are judged on partial numbers too.
    """

    code: SignalCode
    label: str
    explanation: str
    check: Check
    settings: Mapping[str, Setting] = field(default_factory=dict)
    finished_only: bool = False


# Code -> rule, in the order signals are evaluated and listed.
RULES: dict[SignalCode, Rule] = {}


def register(new: Rule) -> Rule:
    """Add a rule; its code and setting names must be new."""
    if new.code in RULES:
        raise ValueError(f"signal rule {new.code!r} is already registered")
    taken = {name for existing in RULES.values() for name in existing.settings}
    if clash := taken & set(new.settings):
        raise ValueError(f"signal settings already registered: {sorted(clash)}")
    RULES[new.code] = new
    return new


def unregister(code: SignalCode) -> None:
    """Remove a rule (tests that register one of their own clean up with this)."""
    del RULES[code]


def rule(
    code: SignalCode,
    *,
    label: str,
    explanation: str,
    settings: Mapping[str, Setting] | None = None,
    finished_only: bool = False,
) -> Callable[[Check], Check]:
    """Register the decorated function as the check of a new rule."""

    def decorate(check: Check) -> Check:
        register(
            Rule(
                code=code,
                label=label,
                explanation=explanation,
                check=check,
                settings=dict(settings or {}),
                finished_only=finished_only,
            )
        )
        return check

    return decorate


def signal_codes() -> tuple[SignalCode, ...]:
    """Return the registered codes, in rule order."""
    return tuple(RULES)


def signal_labels() -> dict[SignalCode, str]:
    """Return code -> the short Chinese name shown on badges and in the search filter."""
    return {code: r.label for code, r in RULES.items()}


def setting_name(short: str) -> str:
    """Return the config name of a rule setting: "cost_rise_pct" -> "SIGNAL_COST_RISE_PCT"."""
    return f"SIGNAL_{short.upper()}"


def signal_settings() -> dict[str, tuple[float, str]]:
    """Return every rule setting as kb.config lists settings: name -> (default, description)."""
    return {
        setting_name(short): (s.default, s.description)
        for r in RULES.values()
        for short, s in r.settings.items()
    }


def _defaults() -> dict[str, float]:
    return {short: s.default for r in RULES.values() for short, s in r.settings.items()}


class SignalThresholds(Mapping[str, float]):
    """The lines the rules draw, by short setting name; unset ones take the rules' defaults."""

    __slots__ = ("_values",)

    def __init__(self, **overrides: float) -> None:
        values = _defaults()
        if unknown := set(overrides) - set(values):
            raise TypeError(f"unknown signal settings: {sorted(unknown)}")
        values.update({name: float(value) for name, value in overrides.items()})
        self._values = values

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SignalThresholds:
        """Read the ``SIGNAL_*`` settings from a config mapping; missing ones take the defaults."""
        return cls(
            **{
                short: float(config.get(setting_name(short), default))
                for short, default in _defaults().items()
            }
        )

    def by_setting(self) -> dict[str, float]:
        """Return the thresholds by config name ("SIGNAL_COST_RISE_PCT"), as the API shows them."""
        return {setting_name(short): value for short, value in self._values.items()}

    def __getitem__(self, name: str) -> float:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"SignalThresholds({self._values!r})"


def readme_rows() -> list[str]:
    """Return the README settings-table rows of every rule setting (tests/test_docs.py checks them)."""
    return [
        f"| `KB_{name}` | `{default:g}` | {description} |"
        for name, (default, description) in signal_settings().items()
    ]
