"""Typed, validated parameters from `parameters/*.yaml`: conventions, targets, segments.

Unknown keys, wrong types and unknown metric names are `ParameterError`s naming the file and key.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import paths
from .errors import ParameterError

M = TypeVar("M", bound=BaseModel)


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


def _problem(err: dict, model: type[BaseModel]) -> str:
    """One pydantic error as a person reads it: the key, the rule it breaks and the value it has."""
    key = ".".join(str(part) for part in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown key {key} (known: {', '.join(model.model_fields)})"
    if err["type"] == "missing":
        return f"`{key}` is missing"
    field = model.model_fields.get(str(err["loc"][0]))
    kind = getattr(field.annotation, "__name__", str(field.annotation)) if field else ""
    if err["type"] in ("int_type", "int_parsing", "int_from_float", "float_type", "float_parsing", "bool_type",
                       "bool_parsing", "string_type", "dict_type", "list_type"):
        return f"`{key}` must be {kind}, got {err['input']!r}"
    return f"`{key}` {err['msg'][0].lower()}{err['msg'][1:]}, got {err['input']!r}"


def _typed(model: type[M], data: dict, where: str) -> M:
    """A `model` instance from `data`; every unknown key, missing key, wrong type and broken rule is reported
    at once in a ParameterError naming the file and key."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = [_problem(e, model) for e in err.errors(include_url=False)]
        raise ParameterError(f"{where}: " + "; ".join(problems) + ".") from None


class _Strict(BaseModel):
    """A parameter file's model: unknown keys are errors, values never change once read, and a number is not
    silently read from a string or a bool."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
CAC_SPEND_CATEGORIES = Literal["marketing", "sales", "customer_success", "rnd", "g_and_a"]  # spend categories but COGS


def _float(value):
    """A whole number read from YAML as a float (strict mode refuses an int where a float is declared)."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Conventions(_Strict):
    """Choices where SaaS vendors disagree. Each key, its rule and its meaning are documented once, in
    parameters/conventions.yaml, which sets every key (there are no defaults in code)."""

    reporting_currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    fx_reference: Literal["latest", "earliest"]
    reactivation_offsets_churn: bool
    quick_ratio_includes_reactivation: bool
    ltv_churn_window_months: PositiveInt
    ltv_churn_window_includes_current: bool
    ltv_horizon_months: PositiveInt
    default_gross_margin: Annotated[float, Field(gt=0, le=1)]
    low_n_threshold: Annotated[int, Field(ge=0)]
    status_near_band: Fraction
    dormant_after_months: PositiveInt
    funnel_basis: Literal["cohort", "period"]
    conversion_window_days: PositiveInt
    activation_window_days: PositiveInt
    activation_hours: PositiveInt
    new_user_churn_days: PositiveInt
    pipeline_stage_weights: dict[str, Fraction]
    cac_spend_categories: Annotated[list[CAC_SPEND_CATEGORIES], Field(min_length=1)]
    spend_lag_months: Annotated[int, Field(ge=0)]
    untagged_spend_allocation: Literal["new_customers", "unallocated"]
    unit_economics_window_months: PositiveInt
    ltv_to_cac_basis: Literal["simple", "survival"]
    nps_window_days: PositiveInt
    renewal_window_days: PositiveInt
    onboarding_months: PositiveInt
    training_months: PositiveInt
    extending_utilisation: Fraction
    min_peers: PositiveInt

    @field_validator("default_gross_margin", "status_near_band", "extending_utilisation", mode="before")
    @classmethod
    def _fractions(cls, value):
        return _float(value)

    @field_validator("pipeline_stage_weights", mode="before")
    @classmethod
    def _weights(cls, value):
        return {k: _float(v) for k, v in value.items()} if isinstance(value, dict) else value

    def replaced(self, **changes) -> Conventions:
        """These conventions with `changes`, checked like the file."""
        return _typed(Conventions, {**self.model_dump(), **changes}, "conventions")


@dataclass(frozen=True)
class Target:
    """A metric's target, in the metric's unit, with where it comes from."""

    value: float
    long_term: float | None = None
    source: str = ""


class Segment(_Strict):
    """A segment file: which accounts it covers (an accounts column mapped to the values it keeps) and the targets
    it overrides (metric names mapped to numbers in the metric's unit)."""

    name: str
    label: str = ""
    filter: dict[str, list[str]] = {}
    targets: dict[str, float] = {}

    @field_validator("targets", mode="before")
    @classmethod
    def _whole_numbers_are_numbers(cls, value):
        if isinstance(value, dict):
            return {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in value.items()}
        return value

    def model_post_init(self, _context) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)


def conventions(path: Path = paths.CONVENTIONS_FILE) -> Conventions:
    """The conventions in force."""
    return _typed(Conventions, read_yaml(path), path.name)


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
    return _typed(Segment, {**data, "name": str(data["name"])} if "name" in data else data, where)


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
    if not ok:
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
