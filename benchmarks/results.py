"""benchmarks/RESULTS.md: each benchmark owns one section between its markers and rewrites only that one."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(name: str, heading: str, text: str) -> None:
    """Put `text` between the `name` markers of RESULTS.md (a new `## heading` section at the end if absent)."""
    from saaskpi.paths import atomic_write

    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if begin not in old:
        old = old.rstrip("\n") + f"\n\n## {heading}\n\n{begin}\n{end}\n"
    atomic_write(RESULTS, re.sub(f"{begin}.*?{end}", lambda _: f"{begin}\n{text}\n{end}", old, flags=re.S))
