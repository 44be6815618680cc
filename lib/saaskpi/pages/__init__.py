"""One module per notebook; each `show_<section>(wb)` renders one heading's worth."""
from . import cohort_retention, funnel, unit_economics

__all__ = ["cohort_retention", "funnel", "unit_economics"]
