"""Typed, validated parameters from `parameters/*.yaml`: conventions, targets, segments.

Unknown keys, wrong types and unknown metric names are `ParameterError`s naming the file and key.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from . import paths
from .errors import ParameterError


def read_yaml(path: Path) -> dict:
    """A YAML mapping from `path` (an empty file is an empty mapping)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParameterError(f"Parameter file {path} does not exist.") from None
    except yaml.YAMLError as err:
        raise ParameterError(f"{path.name} is not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"{path.name} must hold a mapping of keys to values.")
    return data


def _typed(cls, data: dict, where: str):
    """An instance of dataclass `cls` from `data`; unknown keys and wrong types are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ParameterError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                             f"(known: {', '.join(fields)}).")
    values = {}
    for key, value in data.items():
        kind = type(getattr(cls(), key)) if key in fields else None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is not None and kind is not type(None) and not isinstance(value, kind):
            raise ParameterError(f"{where}: `{key}` must be {kind.__name__}, got {value!r}.")
        values[key] = value
    return cls(**values)


@dataclass(frozen=True)
class Conventions:
    """Choices where SaaS vendors disagree (see parameters/conventions.yaml for each key)."""

    reporting_currency: str = "USD"
    fx_reference: str = "latest"
    fiscal_year_start_month: int = 1
    reactivation_offsets_churn: bool = True
    quick_ratio_includes_reactivation: bool = True
    ltv_churn_window_months: int = 6
    ltv_horizon_months: int = 60
    default_gross_margin: float = 0.8
    low_n_threshold: int = 20
    status_near_band: float = 0.1
    dormant_after_months: int = 1
    funnel_basis: str = "cohort"
    conversion_window_days: int = 90
    activation_window_days: int = 30
    activation_hours: int = 48
    new_user_churn_days: int = 30
    pipeline_stage_weights: dict = field(default_factory=lambda: {
        "prospecting": 0.1, "discovery": 0.2, "proposal": 0.5, "negotiation": 0.7, "won": 1.0, "lost": 0.0})
    cac_spend_categories: list = field(default_factory=lambda: ["marketing", "sales"])
    spend_lag_months: int = 0
    untagged_spend_allocation: str = "new_customers"
    unit_economics_window_months: int = 12
    ltv_to_cac_basis: str = "simple"
    nps_window_days: int = 90
    renewal_window_days: int = 90
    onboarding_months: int = 3
    training_months: int = 6
    extending_utilisation: float = 0.8
    min_peers: int = 5

    def __post_init__(self):
        if self.funnel_basis not in ("cohort", "period"):
            raise ParameterError(f"conventions.yaml: `funnel_basis` must be cohort or period, got {self.funnel_basis!r}.")
        for key in ("conversion_window_days", "activation_window_days", "activation_hours", "new_user_churn_days",
                    "nps_window_days"):
            if getattr(self, key) <= 0:
                raise ParameterError(f"conventions.yaml: `{key}` must be a positive whole number.")
        bad = {k: v for k, v in self.pipeline_stage_weights.items()
               if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1}
        if bad:
            raise ParameterError(f"conventions.yaml: `pipeline_stage_weights` must map stages to fractions in [0, 1]; "
                                 f"bad: {bad}.")
        if self.untagged_spend_allocation not in ("new_customers", "unallocated"):
            raise ParameterError("conventions.yaml: `untagged_spend_allocation` must be new_customers or unallocated, "
                                 f"got {self.untagged_spend_allocation!r}.")
        if self.ltv_to_cac_basis not in ("simple", "survival"):
            raise ParameterError(f"conventions.yaml: `ltv_to_cac_basis` must be simple or survival, got {self.ltv_to_cac_basis!r}.")
        if self.spend_lag_months < 0 or self.unit_economics_window_months <= 0:
            raise ParameterError("conventions.yaml: `spend_lag_months` must be 0 or more and "
                                 "`unit_economics_window_months` positive.")
        spend_categories = {"marketing", "sales", "cogs", "customer_success", "rnd", "g_and_a"}
        if not self.cac_spend_categories or not set(self.cac_spend_categories) <= spend_categories - {"cogs"}:
            raise ParameterError(f"conventions.yaml: `cac_spend_categories` must list spend categories among "
                                 f"{sorted(spend_categories - {'cogs'})}, got {self.cac_spend_categories!r}.")
        if self.fx_reference not in ("latest", "earliest"):
            raise ParameterError(f"conventions.yaml: `fx_reference` must be latest or earliest, got {self.fx_reference!r}.")
        if not 1 <= self.fiscal_year_start_month <= 12:
            raise ParameterError("conventions.yaml: `fiscal_year_start_month` must be 1-12.")
        if not 0 < self.default_gross_margin <= 1:
            raise ParameterError("conventions.yaml: `default_gross_margin` must be a fraction in (0, 1].")


@dataclass(frozen=True)
class Target:
    """A metric's target, in the metric's unit, with where it comes from."""

    value: float
    long_term: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Segment:
    """A segment file: which accounts it covers and the targets it overrides."""

    name: str
    label: str
    filter: dict[str, list[str]] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)


def conventions(path: Path = paths.CONVENTIONS_FILE) -> Conventions:
    """The conventions in force."""
    return _typed(Conventions, read_yaml(path), path.name)


def targets(path: Path = paths.TARGETS_FILE) -> dict[str, Target]:
    """Targets by metric name (checked against the registry by `check_targets`)."""
    out = {}
    for name, spec in read_yaml(path).items():
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            spec = {"value": spec}
        if not isinstance(spec, dict):
            raise ParameterError(f"{path.name}: `{name}` must be a number or a mapping with `value`.")
        try:
            fields: dict[str, Any] = {k: (float(v) if k in ("value", "long_term") else v) for k, v in spec.items()}
            out[name] = Target(**fields)
        except TypeError:
            raise ParameterError(f"{path.name}: `{name}` may have only value, long_term and source.") from None
        except ValueError:
            raise ParameterError(f"{path.name}: `{name}` value must be a number.") from None
    return out


def segment_names(folder: Path = paths.SEGMENTS_DIR) -> list[str]:
    """Names of the segment files, `all` first."""
    names = sorted(p.stem for p in folder.glob("*.yaml"))
    return sorted(names, key=lambda n: (n != "all", n))


def known_segments() -> tuple[str, ...]:
    """The accounts.segment values the segment files select (empty when none filters on `segment`)."""
    return tuple(sorted({v for n in segment_names() for v in segment(n).filter.get("segment", [])}))


@lru_cache(maxsize=64)
def segment(name: str, folder: Path = paths.SEGMENTS_DIR) -> Segment:
    """The segment defined by `parameters/segments/<name>.yaml`."""
    path = folder / f"{name}.yaml"
    if not path.exists():
        raise ParameterError(f"Unknown segment {name!r}: choose one of {', '.join(segment_names(folder))} "
                             f"(files in {folder}).")
    data: dict[str, Any] = read_yaml(path)
    seg = _typed_segment(data, path.name)
    if seg.name != name:
        raise ParameterError(f"{path.name}: `name` is {seg.name!r} but the file is {name!r}.")
    return seg


def _typed_segment(data: dict, where: str) -> Segment:
    allowed = {"name", "label", "filter", "targets"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ParameterError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                             f"(segment files may set only {', '.join(sorted(allowed))}).")
    if "name" not in data:
        raise ParameterError(f"{where}: `name` is required.")
    flt = data.get("filter") or {}
    if not isinstance(flt, dict) or not all(isinstance(v, list) for v in flt.values()):
        raise ParameterError(f"{where}: `filter` maps an accounts column to a list of values.")
    tg = data.get("targets") or {}
    if not isinstance(tg, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in tg.values()):
        raise ParameterError(f"{where}: `targets` maps metric names to numbers.")
    return Segment(str(data["name"]), str(data.get("label", data["name"])),
                   {str(k): [str(x) for x in v] for k, v in flt.items()}, {k: float(v) for k, v in tg.items()})


STAGES = ("early", "growth", "mature")


@dataclass(frozen=True)
class Executive:
    """The executive summary's choices: north star, top-7 groups and the KPIs that lead each business stage."""

    north_star: str
    business_stage: str
    top7: dict[str, list[str]]
    stages: dict[str, list[str]]

    def leading(self, stage: str = "") -> list[str]:
        """The metrics that lead the page at `stage` (default: business_stage)."""
        stage = stage or self.business_stage
        if stage not in STAGES:
            raise ParameterError(f"business_stage must be one of {', '.join(STAGES)}, got {stage!r}.")
        return self.stages[stage]


def executive(path: Path = paths.EXECUTIVE_FILE, known: set[str] | None = None) -> Executive:
    """The executive summary's parameters; unknown keys, stages or metric names (when `known` is given) are errors."""
    data = read_yaml(path)
    allowed = {"north_star", "business_stage", "top7", "stages"}
    unknown = sorted(set(data) - allowed)
    missing = sorted(allowed - set(data))
    if unknown or missing:
        raise ParameterError(f"{path.name}: " + "; ".join(
            ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []) + ([f"missing {', '.join(missing)}"] if missing else []))
            + f" (expected {', '.join(sorted(allowed))}).")
    groups = {"top7": data["top7"], "stages": data["stages"]}
    for key, value in groups.items():
        if not isinstance(value, dict) or not all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                                                  for v in value.values()):
            raise ParameterError(f"{path.name}: `{key}` maps names to lists of metric names.")
    if set(data["stages"]) != set(STAGES):
        raise ParameterError(f"{path.name}: `stages` must list exactly {', '.join(STAGES)}.")
    ex = Executive(str(data["north_star"]), str(data["business_stage"]), dict(data["top7"]), dict(data["stages"]))
    ex.leading()  # checks business_stage
    if known is not None:
        names = {ex.north_star, *(m for v in ex.top7.values() for m in v), *(m for v in ex.stages.values() for m in v)}
        bad = sorted(names - known)
        if bad:
            raise ParameterError(f"{path.name} names unknown metric(s) {', '.join(bad)}; see docs/metrics.md for the names.")
    return ex


# --------------------------------------------------------------------------- customer success and health
HEALTH_MEASURES = ("licence_utilisation", "engagement_score", "account_nps", "csat", "sla_breach_rate", "touchpoints",
                   "net_sentiment", "days_overdue")


@dataclass(frozen=True)
class HealthComponent:
    """One health component: an account measure mapped linearly from `worst` (score 0) to `best` (100)."""

    name: str
    measure: str
    worst: float
    best: float
    weight: float

    def score(self, values):
        """Component scores 0-100 of measure `values` (NaN stays NaN: the component is missing)."""
        import numpy as np

        v = np.asarray(values, dtype="float64")
        return np.clip((v - self.worst) / (self.best - self.worst), 0, 1) * 100


@dataclass(frozen=True)
class HealthModel:
    """Components and bands of the health score for one segment."""

    components: tuple[HealthComponent, ...]
    red: int = 50
    yellow: int = 75

    def band(self, score):
        """red / yellow / green of whole-number scores (NaN -> n/a)."""
        import numpy as np

        s = np.asarray(score, dtype="float64")
        return np.select([np.isnan(s), s <= self.red, s <= self.yellow], ["n/a", "red", "yellow"], default="green")


@dataclass(frozen=True)
class SuccessSettings:
    """parameters/customer_success.yaml and parameters/health_score.yaml, checked."""

    window_days: int
    sticky_features: dict[str, float]
    adoption_days: dict[str, int]
    sla_hours: dict[str, float]
    csm_capacity: dict[str, float]
    forecast_history_months: int
    health: HealthModel
    health_by_segment: dict[str, HealthModel]
    falling_points: float
    falling_months: int

    def health_for(self, segment: str) -> HealthModel:
        return self.health_by_segment.get(segment, self.health)

    def capacity(self, segment) -> float:
        return float(self.csm_capacity.get(segment, self.csm_capacity["default"]))


def _mapping(data: dict, key: str, where: str, kind=(int, float), positive: bool = True) -> dict:
    value = data.get(key)
    ok = isinstance(value, dict) and value and all(
        isinstance(v, kind) and not isinstance(v, bool) and (v > 0 if positive else v >= 0) for v in value.values())
    if not ok or not isinstance(value, dict):
        raise ParameterError(f"{where}: `{key}` must map names to {'positive ' if positive else ''}numbers, got {value!r}.")
    return {str(k): v for k, v in value.items()}


def _exact_keys(data: dict, allowed: set[str], where: str, required: set[str] | None = None) -> None:
    unknown = sorted(set(data) - allowed)
    missing = sorted((allowed if required is None else required) - set(data))
    if unknown or missing:
        raise ParameterError(f"{where}: " + "; ".join(
            ([f"unknown key(s) {', '.join(unknown)}"] if unknown else []) + ([f"missing {', '.join(missing)}"] if missing else []))
            + f" (expected {', '.join(sorted(allowed))}).")


def _health_model(components: dict, bands: dict, where: str) -> HealthModel:
    out = []
    for name, spec in components.items():
        here = f"{where} component `{name}`"
        if not isinstance(spec, dict):
            raise ParameterError(f"{here} must be a mapping of measure, worst, best, weight.")
        _exact_keys(spec, {"measure", "worst", "best", "weight"}, here)
        if spec["measure"] not in HEALTH_MEASURES:
            raise ParameterError(f"{here}: unknown measure {spec['measure']!r} (known: {', '.join(HEALTH_MEASURES)}).")
        nums = {k: spec[k] for k in ("worst", "best", "weight")}
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in nums.values()):
            raise ParameterError(f"{here}: worst, best and weight must be numbers, got {nums}.")
        if spec["worst"] == spec["best"] or spec["weight"] < 0:
            raise ParameterError(f"{here}: worst and best must differ and weight must be 0 or more.")
        out.append(HealthComponent(str(name), spec["measure"], float(spec["worst"]), float(spec["best"]),
                                   float(spec["weight"])))
    total = sum(c.weight for c in out)
    if abs(total - 100) > 1e-9:
        raise ParameterError(f"{where}: component weights must add up to 100, they add up to {total:g}.")
    _exact_keys(bands, {"red", "yellow"}, f"{where} bands")
    red, yellow = bands["red"], bands["yellow"]
    if not (isinstance(red, int) and isinstance(yellow, int) and 0 <= red < yellow < 100):
        raise ParameterError(f"{where}: bands need whole numbers 0 <= red < yellow < 100, got red={red!r}, yellow={yellow!r}.")
    return HealthModel(tuple(out), red, yellow)


def success_settings(cs_path: Path = paths.CUSTOMER_SUCCESS_FILE,
                     health_path: Path = paths.HEALTH_SCORE_FILE) -> SuccessSettings:
    """The customer-success parameters (read again only when a file changes)."""
    return _success_settings(cs_path, cs_path.stat().st_mtime_ns if cs_path.exists() else 0,
                             health_path, health_path.stat().st_mtime_ns if health_path.exists() else 0)


@lru_cache(maxsize=4)
def _success_settings(cs_path: Path, _cs_mtime: int, health_path: Path, _health_mtime: int) -> SuccessSettings:
    cs, hs = read_yaml(cs_path), read_yaml(health_path)
    w = cs_path.name
    _exact_keys(cs, {"window_days", "sticky_features", "adoption_days", "sla_hours", "csm_capacity",
                     "forecast_history_months"}, w)
    for key in ("window_days", "forecast_history_months"):
        if isinstance(cs[key], bool) or not isinstance(cs[key], int) or cs[key] <= 0:
            raise ParameterError(f"{w}: `{key}` must be a positive whole number, got {cs[key]!r}.")
    adoption = _mapping(cs, "adoption_days", w, int)
    if set(adoption) != {"early", "mature"}:
        raise ParameterError(f"{w}: `adoption_days` must set early and mature, got {sorted(adoption)}.")
    capacity = _mapping(cs, "csm_capacity", w)
    if "default" not in capacity:
        raise ParameterError(f"{w}: `csm_capacity` needs a `default` entry for segments it does not name.")
    sla = _mapping(cs, "sla_hours", w)
    priorities = {"low", "normal", "high", "urgent"}
    if set(sla) != priorities:
        raise ParameterError(f"{w}: `sla_hours` must set every priority ({', '.join(sorted(priorities))}), got {sorted(sla)}.")
    h = health_path.name
    _exact_keys(hs, {"components", "bands", "falling_points", "falling_months", "segments"}, h,
                required={"components", "bands"})
    if not isinstance(hs["components"], dict) or not hs["components"]:
        raise ParameterError(f"{h}: `components` maps component names to measure, worst, best, weight.")
    if not isinstance(hs["bands"], dict):
        raise ParameterError(f"{h}: `bands` must set red and yellow.")
    base = _health_model(hs["components"], hs["bands"], h)
    overrides = hs.get("segments") or {}
    if not isinstance(overrides, dict):
        raise ParameterError(f"{h}: `segments` maps segment names to component and band overrides.")
    by_segment = {}
    for seg, spec in overrides.items():
        where = f"{h} segment `{seg}`"
        if not isinstance(spec, dict):
            raise ParameterError(f"{where} must be a mapping with components and/or bands.")
        _exact_keys(spec, {"components", "bands"}, where, required=set())
        comps = {name: dict(c) for name, c in hs["components"].items()}
        for name, change in (spec.get("components") or {}).items():
            if name not in comps:
                raise ParameterError(f"{where}: unknown component {name!r} (known: {', '.join(comps)}).")
            if not isinstance(change, dict):
                raise ParameterError(f"{where}: component `{name}` must be a mapping.")
            comps[name].update(change)
        by_segment[str(seg)] = _health_model(comps, {**hs["bands"], **(spec.get("bands") or {})}, where)
    falling_points, falling_months = hs.get("falling_points", 10), hs.get("falling_months", 3)
    if isinstance(falling_months, bool) or not isinstance(falling_months, int) or falling_months <= 0 \
            or not isinstance(falling_points, (int, float)) or falling_points <= 0:
        raise ParameterError(f"{h}: `falling_points` must be a positive number and `falling_months` a positive whole number.")
    return SuccessSettings(cs["window_days"], _mapping(cs, "sticky_features", w), adoption, sla, capacity,
                           cs["forecast_history_months"], base, by_segment, float(falling_points), falling_months)
