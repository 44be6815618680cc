"""One module per notebook; each `show_<section>(wb)` renders one heading's worth."""
from . import benchmarks, cohort_retention, cs_load, executive_summary, funnel, unit_economics

__all__ = ["benchmarks", "cohort_retention", "cs_load", "executive_summary", "funnel", "unit_economics"]
