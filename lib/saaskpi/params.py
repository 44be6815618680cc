"""Typed, validated parameters from `parameters/*.yaml`: conventions, targets, segments.

Unknown keys, wrong types and unknown metric names are `ParameterError`s naming the file and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

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


def _problem(err: ErrorDetails, model: type[BaseModel]) -> str:
    """One pydantic error as a person reads it: the key, the rule it breaks and the value it has."""
    key = ".".join(str(part) for part in err["loc"])
    top = len(err["loc"]) == 1
    if err["type"] == "extra_forbidden":
        return f"unknown key {key}" + (f" (known: {', '.join(model.model_fields)})" if top else "")
    if err["type"] == "missing":
        return f"`{key}` is missing"
    if err["type"] == "value_error":  # a rule of ours: its message says it all
        text = err["msg"].removeprefix("Value error, ")
        return f"`{key}` {text}, got {err['input']!r}" if key else text
    field = model.model_fields.get(str(err["loc"][0])) if top else None
    kind = getattr(field.annotation, "__name__", None) if field else None
    if kind and err["type"] in (
        "int_type",
        "int_parsing",
        "int_from_float",
        "float_type",
        "float_parsing",
        "bool_type",
        "bool_parsing",
        "string_type",
        "dict_type",
        "list_type",
    ):
        return f"`{key}` must be {kind}, got {err['input']!r}"
    return f"`{key}`: {err['msg'][0].lower()}{err['msg'][1:]}, got {err['input']!r}"


def _typed(model: type[M], data: dict, where: str) -> M:
    """A `model` instance from `data`; every unknown key, missing key, wrong type and broken rule is reported
    at once in a ParameterError naming the file and key."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        errors = sorted(err.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")  # misspelt first
        missing = [".".join(str(p) for p in e["loc"]) for e in errors if e["type"] == "missing"]
        problems = [_problem(e, model) for e in errors if e["type"] != "missing"]
        if len(missing) > 1:
            problems.insert(
                len([e for e in errors if e["type"] == "extra_forbidden"]), f"missing keys {', '.join(missing)}"
            )
        elif missing:
            problems.insert(len([e for e in errors if e["type"] == "extra_forbidden"]), f"`{missing[0]}` is missing")
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
    organic_channels: list[str]
    plg_channels: list[str]
    growth_rate_months: PositiveInt
    # cash and sales (issue 25, items 3 and 4)
    cash_horizon_months: PositiveInt
    cash_growth_rate_monthly: Annotated[float, Field(ge=-0.5, le=1.0)]
    profit_acquisition_allocation: Literal["new_customers", "revenue"]
    quota_attainment_basis: Literal["bookings", "new_arr"]
    sales_window_months: PositiveInt
    sales_contact_method_basis: Literal["first_touch", "lead_channel"]
    sales_hiring_bookings_growth: Annotated[float, Field(ge=-0.9, le=10.0)]
    sales_rep_failure_rate: Annotated[float, Field(ge=0, lt=1)]

    @field_validator(
        "default_gross_margin",
        "status_near_band",
        "extending_utilisation",
        "cash_growth_rate_monthly",
        "sales_hiring_bookings_growth",
        "sales_rep_failure_rate",
        mode="before",
    )
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
        raise ParameterError(
            f"Unknown segment {name!r}: choose one of {', '.join(segment_names(folder))} (files in {folder})."
        )
    data: dict[str, Any] = read_yaml(path)
    seg = _typed_segment(data, path.name)
    if seg.name != name:
        raise ParameterError(f"{path.name}: `name` is {seg.name!r} but the file is {name!r}.")
    return seg


def _typed_segment(data: dict, where: str) -> Segment:
    return _typed(Segment, {**data, "name": str(data["name"])} if "name" in data else data, where)


STAGES = ("early", "growth", "mature")


class _Stages(_Strict):
    early: list[str]
    growth: list[str]
    mature: list[str]


class Executive(_Strict):
    """The executive summary's choices (parameters/executive.yaml): north star, top-7 groups of metrics and the
    metrics that lead each business stage."""

    north_star: str
    business_stage: Literal["early", "growth", "mature"]
    top7: dict[str, list[str]]
    stages: _Stages

    def leading(self, stage: str = "") -> list[str]:
        """The metrics that lead the page at `stage` (default: business_stage)."""
        stage = stage or self.business_stage
        if stage not in STAGES:
            raise ParameterError(f"business_stage must be one of {', '.join(STAGES)}, got {stage!r}.")
        return getattr(self.stages, stage)


def executive(path: Path = paths.EXECUTIVE_FILE, known: set[str] | None = None) -> Executive:
    """The executive summary's parameters; unknown keys, stages or metric names (when `known` is given) are errors."""
    ex = _typed(Executive, read_yaml(path), path.name)
    if known is not None:
        names = {
            ex.north_star,
            *(m for v in ex.top7.values() for m in v),
            *(m for stage in STAGES for m in ex.leading(stage)),
        }
        bad = sorted(names - known)
        if bad:
            raise ParameterError(
                f"{path.name} names unknown metric(s) {', '.join(bad)}; see docs/metrics.md for the names."
            )
    return ex


# --------------------------------------------------------------------------- customer success and health
HEALTH_MEASURES = (
    "licence_utilisation",
    "engagement_score",
    "account_nps",
    "csat",
    "sla_breach_rate",
    "touchpoints",
    "net_sentiment",
    "days_overdue",
)


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
    churn_reason_window_days: int = 60  # issue 25: churn reasons and expansion candidates (customer_success.yaml)
    expansion_utilisation: float = 0.8
    expansion_min_health: float = 70.0

    def health_for(self, segment: str) -> HealthModel:
        return self.health_by_segment.get(segment, self.health)

    def capacity(self, segment) -> float:
        return float(self.csm_capacity.get(segment, self.csm_capacity["default"]))


PositiveNumber = Annotated[float, Field(gt=0), BeforeValidator(_float)]


class _AdoptionDays(_Strict):
    early: PositiveInt
    mature: PositiveInt


class _SlaHours(_Strict):
    low: PositiveNumber
    normal: PositiveNumber
    high: PositiveNumber
    urgent: PositiveNumber


class CustomerSuccessFile(_Strict):
    """parameters/customer_success.yaml (each key is documented in the file)."""

    window_days: PositiveInt
    sticky_features: Annotated[dict[str, PositiveNumber], Field(min_length=1)]
    adoption_days: _AdoptionDays
    sla_hours: _SlaHours
    csm_capacity: dict[str, PositiveNumber]
    forecast_history_months: PositiveInt
    churn_reason_window_days: Annotated[int, Field(ge=0)] = 60
    expansion_utilisation: Annotated[float, Field(ge=0), BeforeValidator(_float)] = 0.8
    expansion_min_health: Annotated[float, Field(ge=0, le=100), BeforeValidator(_float)] = 70.0

    @field_validator("csm_capacity")
    @classmethod
    def _has_default(cls, value: dict) -> dict:
        if "default" not in value:
            raise ValueError("needs a `default` entry for segments it does not name")
        return value


class _Component(_Strict):
    measure: Literal[HEALTH_MEASURES]  # type: ignore[valid-type]
    worst: Annotated[float, BeforeValidator(_float)]
    best: Annotated[float, BeforeValidator(_float)]
    weight: Annotated[float, Field(ge=0), BeforeValidator(_float)]

    @model_validator(mode="after")
    def _worst_is_not_best(self):
        if self.worst == self.best:
            raise ValueError(f"worst and best must differ, both are {self.worst:g}")
        return self


class _Bands(_Strict):
    red: Annotated[int, Field(ge=0)]
    yellow: Annotated[int, Field(lt=100)]

    @model_validator(mode="after")
    def _red_below_yellow(self):
        if not self.red < self.yellow:
            raise ValueError(
                f"bands need whole numbers 0 <= red < yellow < 100, got red={self.red}, yellow={self.yellow}"
            )
        return self


class _SegmentHealth(_Strict):
    components: dict[str, dict[str, Any]] = {}
    bands: dict[str, Any] = {}


class HealthScoreFile(_Strict):
    """parameters/health_score.yaml (each key is documented in the file)."""

    components: Annotated[dict[str, dict[str, Any]], Field(min_length=1)]
    bands: dict[str, Any]
    falling_points: PositiveNumber = 10.0
    falling_months: PositiveInt = 3
    segments: dict[str, _SegmentHealth] = {}


def _health_model(components: dict, bands: dict, where: str) -> HealthModel:
    out = [
        HealthComponent(str(name), c.measure, c.worst, c.best, c.weight)
        for name, c in (
            (name, _typed(_Component, spec if isinstance(spec, dict) else {}, f"{where} component `{name}`"))
            for name, spec in components.items()
        )
    ]
    total = sum(c.weight for c in out)
    if abs(total - 100) > 1e-9:
        raise ParameterError(f"{where}: component weights must add up to 100, they add up to {total:g}.")
    b = _typed(_Bands, bands, f"{where} bands")
    return HealthModel(tuple(out), b.red, b.yellow)


def success_settings(
    cs_path: Path = paths.CUSTOMER_SUCCESS_FILE, health_path: Path = paths.HEALTH_SCORE_FILE
) -> SuccessSettings:
    """The customer-success parameters (read again only when a file changes)."""
    return _success_settings(
        cs_path,
        cs_path.stat().st_mtime_ns if cs_path.exists() else 0,
        health_path,
        health_path.stat().st_mtime_ns if health_path.exists() else 0,
    )


@lru_cache(maxsize=4)
def _success_settings(cs_path: Path, _cs_mtime: int, health_path: Path, _health_mtime: int) -> SuccessSettings:
    cs = _typed(CustomerSuccessFile, read_yaml(cs_path), cs_path.name)
    h = health_path.name
    hs = _typed(HealthScoreFile, read_yaml(health_path), h)
    base = _health_model(hs.components, hs.bands, h)
    by_segment = {}
    for seg, spec in hs.segments.items():
        where = f"{h} segment `{seg}`"
        comps = {name: dict(c) for name, c in hs.components.items()}
        for name, change in spec.components.items():
            if name not in comps:
                raise ParameterError(f"{where}: unknown component {name!r} (known: {', '.join(comps)}).")
            comps[name].update(change)
        by_segment[str(seg)] = _health_model(comps, {**hs.bands, **spec.bands}, where)
    return SuccessSettings(
        cs.window_days,
        dict(cs.sticky_features),
        cs.adoption_days.model_dump(),
        cs.sla_hours.model_dump(),
        dict(cs.csm_capacity),
        cs.forecast_history_months,
        base,
        by_segment,
        hs.falling_points,
        hs.falling_months,
        cs.churn_reason_window_days,
        cs.expansion_utilisation,
        cs.expansion_min_health,
    )


# --------------------------------------------------------------------------- forecast and drivers
DRIVER_GROUPS = Literal["segment", "acquisition_channel", "plan"]


class ForecastSettings(_Strict):
    """parameters/forecast.yaml: the forecast, its backtest and the driver decomposition (each key is documented
    in the file)."""

    horizon_months: PositiveInt
    lookback_months: PositiveInt
    age_buckets: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    min_exposure_accounts: Annotated[int, Field(ge=0)]
    run_rate_months: PositiveInt
    pipeline_months: Annotated[int, Field(ge=0)]
    pipeline_amount_months: PositiveInt
    stale_after_cycles: PositiveNumber
    scheduled_ends: bool
    backtest_scheduled_ends: bool
    backtest_origins: PositiveInt
    backtest_horizons: Annotated[list[PositiveInt], Field(min_length=1)]
    interval: tuple[Fraction, Fraction]
    min_interval_errors: PositiveInt
    scenario_range_pct: PositiveInt
    drivers_by: Annotated[list[DRIVER_GROUPS], Field(min_length=1)]
    summary_metric: Literal["mrr_growth", "nrr", "grr", "logo_churn", "funnel_conversion", "cac"]
    summary_comparison: Literal["previous_month", "previous_year"]
    summary_by: Literal["segment", "acquisition_channel", "plan", "all"]
    summary_contributions: Annotated[int, Field(ge=1, le=5)]

    @field_validator("interval", mode="before")
    @classmethod
    def _interval_numbers(cls, value):
        return tuple(_float(v) for v in value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _consistent(self) -> ForecastSettings:
        if self.age_buckets[0] != 0 or sorted(set(self.age_buckets)) != self.age_buckets:
            raise ValueError("`age_buckets` must start at 0 and increase (lower bounds of the age bands, in months)")
        if not self.interval[0] < self.interval[1]:
            raise ValueError("`interval` must be [lower quantile, upper quantile] with lower < upper")
        if self.pipeline_months > self.horizon_months:
            raise ValueError("`pipeline_months` cannot exceed `horizon_months`")
        return self


def forecast_settings(path: Path = paths.FORECAST_FILE) -> ForecastSettings:
    """The forecast parameters (read again only when the file changes)."""
    return _forecast_settings(path, path.stat().st_mtime_ns if path.exists() else 0)


@lru_cache(maxsize=4)
def _forecast_settings(path: Path, _mtime: int) -> ForecastSettings:
    data = read_yaml(path)
    if isinstance(data.get("interval"), list):
        data = {**data, "interval": tuple(_float(v) for v in data["interval"])}
    return _typed(ForecastSettings, data, path.name)


# --------------------------------------------------------------------------- dated goals
class Goal(_Strict):
    """A dated goal: `metric` reaches `value` (in the metric's unit) by the end of month `deadline` (YYYY-MM),
    for `segment` (a segment file name; "all" is the company)."""

    metric: str
    value: Annotated[float, BeforeValidator(_float)]
    deadline: Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
    segment: str = "all"
    label: str = ""

    @field_validator("deadline", mode="before")
    @classmethod
    def _month_text(cls, value):
        import datetime as dt

        # YAML reads 2027-06-01 as a date: accept it when it is a month's first day (the month is what counts)
        if isinstance(value, dt.date) and value.day == 1:
            return f"{value.year:04d}-{value.month:02d}"
        return value


class TargetsFile(_Strict):
    """parameters/targets.yaml: dated goals (each key is documented in the file). A metric's standing target
    is declared with the metric (docs/metrics.md) and overridden per segment in parameters/segments/."""

    goals: list[Goal] = []


def targets_file(path: Path | None = None, known: set[str] | None = None) -> TargetsFile:
    """The dated goals of `path` (default parameters/targets.yaml; none when the file is absent); a goal naming an
    unknown metric (when `known` is given) or segment is an error."""
    path = path or paths.TARGETS_FILE
    if not path.exists():
        return TargetsFile()
    data = read_yaml(path)
    goals = data.get("goals")
    if isinstance(goals, list):  # a segment name YAML reads as a number (2024) is still a name
        data = {
            **data,
            "goals": [g if not isinstance(g, dict) else {**g, "segment": str(g.get("segment", "all"))} for g in goals],
        }
    out = _typed(TargetsFile, data, path.name)
    problems = []
    segments = set(segment_names())
    for i, goal in enumerate(out.goals):
        if known is not None and goal.metric not in known:
            problems.append(f"`goals.{i}.metric` is not a registered metric (docs/metrics.md), got {goal.metric!r}")
        if goal.segment not in segments:
            problems.append(
                f"`goals.{i}.segment` is not a segment file ({', '.join(sorted(segments))}), got {goal.segment!r}"
            )
    if problems:
        raise ParameterError(f"{path.name}: " + "; ".join(problems) + ".")
    return out
