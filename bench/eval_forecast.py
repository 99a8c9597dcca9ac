"""Evaluate the draft forecast by leave-one-out over a corpus of completed campaigns.

Usage: python bench/eval_forecast.py [--corpus PATH] [--models fake|e5,use] [--data-dir DIR]

Loads the corpus (default: the demo data; else a JSON list of campaigns in the same shape) into a
fresh app and indexes it. Then each completed campaign in turn is hidden and drafted again
without outcomes (its metrics keep names, units, baselines and targets only), analysed through
the app's own path (``analyze_draft`` with the hidden campaign excluded), and every target
metric's forecast is compared with what the campaign achieved. Prints:

- forecast share: target metrics (with a target and an actual) that got a range (p25–p75);
- p25–p75 coverage: how often that range held the actual (calibrated: about 0.5);
- Brier skill of the hit probability against always answering the base rate (the hit rate of
  every other completed campaign's target metrics), over the metrics given a probability;
- median absolute log error of the forecast median;
- then how many ranges rest on the metric itself and how many on metrics of the same kind (each
  with its coverage), and the target metrics left without a range, by reason.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kb.drafts.forecast import MetricForecast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DRAFT_FIELDS = (
    "title", "industry", "department", "business_line", "goal_type", "goal", "audience",
    "products", "rewards", "channels", "start_date", "end_date", "budget_cny", "tags",
)  # fmt: skip


@dataclass(slots=True)
class Figures:
    """What the leave-one-out run measured; ``rows`` keeps one line per target metric."""

    target_metrics: int = 0
    forecast: int = 0
    covered: int = 0
    probability_n: int = 0
    brier: float = 0.0
    brier_base: float = 0.0
    log_errors: list[float] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    # Ranges that rest on analogs' metrics of the same kind (too few measured the metric).
    family_forecast: int = 0
    family_covered: int = 0
    # Why a target metric got no range: reason -> metric names.
    no_range: dict[str, list[str]] = field(default_factory=dict)

    @property
    def share_forecast(self) -> float:
        """Return the share of target metrics that got a range."""
        return self.forecast / self.target_metrics if self.target_metrics else 0.0

    @property
    def coverage(self) -> float:
        """Return how often the p25–p75 range held the actual."""
        return self.covered / self.forecast if self.forecast else 0.0

    @property
    def brier_skill(self) -> float:
        """Return 1 − Brier / Brier of the base rate (positive: better than the base rate)."""
        return 1 - self.brier / self.brier_base if self.brier_base else 0.0

    @property
    def median_log_error(self) -> float:
        """Return the median of |ln(forecast median / actual)|."""
        return statistics.median(self.log_errors) if self.log_errors else math.nan


def draft_of(record: dict[str, Any], baselines: bool) -> dict[str, Any]:
    """Return a completed campaign's record as a draft: plan only, no outcomes."""
    draft = {key: record[key] for key in DRAFT_FIELDS if record.get(key) is not None}
    draft["metrics"] = [
        {
            "name": m["name"],
            "unit": m.get("unit", ""),
            "target": m.get("target"),
            **({"baseline": m.get("baseline")} if baselines else {}),
        }
        for m in record.get("metrics", [])
    ]
    return draft


def make_app(data_dir: Path, models: str, records: list[dict[str, Any]]) -> Any:
    """Create an app on ``data_dir`` with ``records`` loaded and indexed."""
    from kb import create_app
    from kb.campaigns import services
    from kb.campaigns.schemas import validate_campaign
    from kb.searching import indexer

    app = create_app({"DATA_DIR": str(data_dir), "EMBEDDING_MODELS": models, "INDEX_SYNC": True})
    with app.app_context():
        for record in records:
            services.upsert_campaign(validate_campaign(record))
        indexer.reconcile()
        indexer.drain()
    return app


def evaluate(app: Any, records: list[dict[str, Any]]) -> Figures:
    """Hide each completed campaign, forecast its target metrics from the rest, score them."""
    from kb.campaigns.schemas import DraftMetricIn, validate_draft
    from kb.drafts.analysis import analyze_draft
    from kb.extensions import db
    from kb.models import Campaign

    baselines = "baseline" in DraftMetricIn.model_fields
    figures = Figures()
    with app.app_context():
        ids = dict(db.session.execute(db.select(Campaign.external_id, Campaign.id)).all())
        completed = [r for r in records if r.get("status") == "completed"]
        outcomes = [
            [hit for m in r.get("metrics", []) if (hit := _hit(m)) is not None] for r in completed
        ]
        for index, record in enumerate(completed):
            # The base rate a forecaster could quote without any analogs: every other campaign.
            others = [hit for i, hits in enumerate(outcomes) if i != index for hit in hits]
            base_rate = sum(others) / len(others) if others else 0.5
            analysis = analyze_draft(
                validate_draft(draft_of(record, baselines)), exclude_id=ids[record["external_id"]]
            )
            for truth, result in zip(
                record.get("metrics", []), analysis.forecast.metrics, strict=True
            ):
                _score(figures, record, truth, result, base_rate)
    return figures


def _hit(metric: dict[str, Any]) -> bool | None:
    from kb.campaigns import metrics as catalog

    # The forecast's own reading of the name: a catalog match, else by unit and wording.
    found = catalog.resolve(metric["name"], metric.get("unit", ""))
    direction = found.metric.direction if found else "higher"
    return catalog.assess(direction, None, metric.get("target"), metric.get("actual")).hit


def _score(
    figures: Figures,
    record: dict[str, Any],
    truth: dict[str, Any],
    result: MetricForecast,
    base_rate: float,
) -> None:
    actual, target = truth.get("actual"), truth.get("target")
    if actual is None or target is None:
        return
    figures.target_metrics += 1
    hit = _hit(truth)
    label = f"{record['external_id']} {truth['name']}"
    p25, median, p75 = result.p25, result.median, result.p75
    probability = result.hit_probability
    line = f"{label}: actual {actual:g}"
    if p25 is not None and p75 is not None and median is not None:
        figures.forecast += 1
        inside = min(p25, p75) <= actual <= max(p25, p75)
        figures.covered += inside
        if result.family is not None:
            figures.family_forecast += 1
            figures.family_covered += inside
        if median > 0 and actual > 0:
            figures.log_errors.append(abs(math.log(median / actual)))
        line += f"  range {p25:g}–{p75:g} ({'in' if inside else 'out'})  median {median:g}"
    else:
        line += "  no range"
        figures.no_range.setdefault(_why_no_range(result), []).append(truth["name"])
    if probability is not None and hit is not None:
        figures.probability_n += 1
        figures.brier += (probability - hit) ** 2
        figures.brier_base += (base_rate - hit) ** 2
        line += f"  P(hit) {probability:.2f} vs base {base_rate:.2f}, hit {hit}"
    figures.rows.append(line)


def _why_no_range(result: MetricForecast) -> str:
    if result.key is None:
        return "name not in the catalog"
    if result.target is None and result.baseline is None:
        return "no target or baseline"
    return "fewer than 5 analogs measured the metric or its kind"


def report(figures: Figures) -> str:
    """Return the four headline figures, then where ranges came from and why some did not."""
    family = figures.family_forecast
    why = [
        f"  {reason}: {len(names)} ({', '.join(sorted(set(names)))})"
        for reason, names in sorted(figures.no_range.items())
    ]
    return "\n".join(
        [
            f"target metrics (with target and actual): {figures.target_metrics}",
            f"forecast share (got a p25–p75 range): {figures.share_forecast:.3f}"
            f" ({figures.forecast}/{figures.target_metrics})",
            f"p25–p75 coverage: {figures.coverage:.3f} ({figures.covered}/{figures.forecast})",
            f"Brier skill vs base rate: {figures.brier_skill:+.3f}"
            f" (n={figures.probability_n}, Brier {figures.brier / max(figures.probability_n, 1):.3f}"
            f", base {figures.brier_base / max(figures.probability_n, 1):.3f})",
            f"median |ln(median/actual)|: {figures.median_log_error:.3f}"
            f" (factor {math.exp(figures.median_log_error):.2f})",
            f"  of the ranges, from the metric itself: {figures.forecast - family}, coverage "
            f"{_share(figures.covered - figures.family_covered, figures.forecast - family)}; "
            f"from metrics of the same kind: {family}, coverage "
            f"{_share(figures.family_covered, family)}",
            f"no range: {figures.target_metrics - figures.forecast}",
            *why,
        ]
    )


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.3f} ({part}/{whole})" if whole else "n/a"


def load_corpus(path: Path | None) -> list[dict[str, Any]]:
    """Return the corpus records: the file given, else the bundled demo data.

    Records of the file without an external_id get one; records the app would refuse are
    skipped, each named on stderr.
    """
    if path is None:
        from kb.demo import demo_records

        return demo_records()
    from kb.campaigns.schemas import validate_campaign
    from kb.validation import InvalidInputError

    records: list[dict[str, Any]] = []
    for index, record in enumerate(json.loads(path.read_text(encoding="utf-8"))):
        # Hidden campaigns are found again by external_id: give one to records without it.
        record = {**record, "external_id": record.get("external_id") or f"eval-{index + 1}"}
        try:
            validate_campaign(record)
        except InvalidInputError as exc:
            print(f"skipped {record['external_id']}: {exc.fields}", file=sys.stderr)
            continue
        records.append(record)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None, help="JSON list of campaigns")
    parser.add_argument("--models", default="fake", help="fake (hashing) or e.g. e5,use")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--verbose", action="store_true", help="one line per target metric")
    parser.add_argument(
        "--equal-weights", action="store_true", help="every analog weighs the same (ablation)"
    )
    options = parser.parse_args()
    if options.equal_weights:
        from kb.drafts import forecast

        forecast.WEIGH_ANALOGS = False
    records = load_corpus(options.corpus)
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="kb-forecast-"))
    app = make_app(data_dir, options.models, records)
    figures = evaluate(app, records)
    if options.verbose:
        print("\n".join(figures.rows))
    corpus = options.corpus or "demo data"
    weights = "equal" if options.equal_weights else "similarity and closeness"
    print(f"corpus: {corpus}; models: {options.models}; analog weights: {weights}")
    print(report(figures))


if __name__ == "__main__":
    main()
