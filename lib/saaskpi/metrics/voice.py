"""Voice of the customer (issue 25, item 8): survey comments beside NPS and CSAT, their most frequent themes per
segment, and CSM overrides of the computed health score.

Themes are frequent phrases, found without a model: every comment is lower-cased and split into words at
anything but letters, digits, hyphens and apostrophes; its phrases are its runs of 1 to `max_words` words that neither
start nor end with a stop word (STOP_WORDS, a fixed English list) and do not cross punctuation. A phrase's
count is the number of comments holding it (a comment counts once). A phrase is dropped when a longer phrase
holding it has the same count (it adds nothing: "response time" inside "support response time"). Going down the
phrases of a segment by count (then alphabetically), a phrase sharing a word with a theme already chosen is
skipped when 90 % of its comments hold that theme (the same comments said the same thing); the first
`top_themes` phrases kept with at least `min_comments` comments are the segment's themes,
each with the share of its comments that came with a low score (NPS 0-6, CSAT 1-2) and the latest comment
holding it. Settings: parameters/voice.yaml.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import narwhals as nw
import numpy as np
import pandas as pd
import polars as pl

from .. import paths
from ..errors import ParameterError
from ..frames import calendar_months, data_end, empty_frame, lookup, month_of, month_start, safe_ratio, to_pandas
from ..params import read_yaml
from ..sources import Tables
from .lifecycle import account_names
from .registry import metric, table
from .series import month_series

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it it's its itself just me more most my myself no nor not now
    of off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves us also again still
    much many really lot lots get got use used using make makes made need needs i'm we're we've don't can't isn't""".split()
)
WORD = re.compile(r"[a-z0-9'-]+")
OVERLAP = 0.9  # a phrase sharing a word with a chosen theme and 90 % of its comments is that theme again
SENTENCE = re.compile(r"[.,!?;:()]+")  # a phrase never spans punctuation
COMMENTS = ("accounts", "subscriptions", "survey_comments")


@dataclass(frozen=True)
class VoiceSettings:
    window_months: int = 12
    top_themes: int = 5
    min_comments: int = 3
    max_words: int = 3


def voice_settings(path: Path = paths.PARAMETERS_DIR / "voice.yaml") -> VoiceSettings:
    """parameters/voice.yaml (defaults without it); an unknown key or a value below 1 is a ParameterError."""
    raw = (read_yaml(path) or {}) if path.exists() else {}
    d = VoiceSettings()
    known = set(d.__dataclass_fields__)
    if not isinstance(raw, dict) or set(raw) - known:
        raise ParameterError(f"{path.name} takes {', '.join(sorted(known))}; got {raw!r}.")
    values = {k: raw.get(k, getattr(d, k)) for k in known}
    bad = {k: v for k, v in values.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
    if bad:
        raise ParameterError(f"{path.name}: {', '.join(bad)} must be whole numbers of at least 1, got {bad}.")
    return VoiceSettings(**values)


def phrases(comment: str, max_words: int = 3) -> set[str]:
    """The comment's candidate phrases: runs of 1 to max_words words between punctuation marks, no stop word at either
    end ("Support response time is too slow." -> support, response, time, slow, support response, response time,
    support response time)."""
    found = set()
    for sentence in SENTENCE.split(comment.lower()):
        words = WORD.findall(sentence)
        for n in range(1, max_words + 1):
            for i in range(len(words) - n + 1):
                run = words[i : i + n]
                if run[0] not in STOP_WORDS and run[-1] not in STOP_WORDS and not run[0].isdigit():
                    found.add(" ".join(run))
    return found


def themes(comments: pd.DataFrame, s: VoiceSettings) -> pd.DataFrame:
    """Themes of one group of comments (columns comment, low, answered_at): theme, comments, share, low_share, example."""
    cols = {"theme": "str", "comments": "int64", "share": "float64", "low_share": "float64", "example": "str"}
    if comments.empty:
        return empty_frame(cols)
    said = {c: phrases(c, s.max_words) for c in set(comments.comment)}  # a comment given many times is read once
    held = [said[c] for c in comments.comment]
    counts = Counter(p for ps in held for p in ps)
    kept = {p: n for p, n in counts.items() if n >= s.min_comments}
    longer: dict[str, int] = {}
    for p, n in kept.items():  # the largest count of a longer kept phrase holding p
        words = p.split()
        for size in range(1, len(words)):
            for i in range(len(words) - size + 1):
                part = " ".join(words[i : i + size])
                longer[part] = max(longer.get(part, 0), n)
    kept = {p: n for p, n in kept.items() if longer.get(p, 0) < n}
    top: list[tuple[str, int]] = []
    for p, n in sorted(kept.items(), key=lambda pn: (-pn[1], pn[0])):
        vocabulary = set(p.split())
        holding = {i for i, h in enumerate(held) if p in h}
        if any(
            vocabulary & set(t.split()) and len(holding & {i for i, h in enumerate(held) if t in h}) >= OVERLAP * n
            for t, _ in top
        ):
            continue  # the same comments, said with a word of a theme already chosen
        top.append((p, n))
        if len(top) == s.top_themes:
            break
    rows = []
    order = comments.reset_index(drop=True).assign(held=held).sort_values("answered_at", kind="stable")
    for p, n in top:
        having = order[[p in h for h in order.held]]
        rows.append((p, n, n / len(comments), float(having.low.mean()), str(having.comment.iloc[-1])))
    return pd.DataFrame(rows, columns=list(cols)).astype({"comments": "int64"})


def survey_answers(tables: Tables, end: pd.Timestamp, start: pd.Timestamp) -> pd.DataFrame:
    """Every comment on an answer given in [start, end): survey, survey_id, account_id, answered_at, score, low, comment."""
    comments = to_pandas(tables.lazy("survey_comments"))
    parts = []
    if tables.has("nps_responses"):
        nps = to_pandas(tables.lazy("nps_responses").select("response_id", "account_id", "responded_at", "score"))
        nps = nps.rename(columns={"response_id": "survey_id", "responded_at": "answered_at"}).assign(survey="nps")
        parts.append(nps.assign(low=nps.score <= 6))
    if tables.has("support_tickets"):
        t = to_pandas(
            tables.lazy("support_tickets")
            .filter(~nw.col("csat").is_null())
            .select("ticket_id", "account_id", "created_at", "csat")
        )
        t = t.rename(columns={"ticket_id": "survey_id", "created_at": "answered_at", "csat": "score"}).assign(
            survey="csat"
        )
        parts.append(t.assign(low=t.score <= 2))
    cols = ["survey", "survey_id", "account_id", "answered_at", "score", "low", "comment"]
    if not parts:
        return pd.DataFrame(columns=cols)
    answers = pd.concat(parts, ignore_index=True)
    out = comments.merge(answers, on=["survey", "survey_id"])  # the segment's answers only
    out = out[(out.answered_at >= start) & (out.answered_at < end)]
    return out[cols].sort_values(["answered_at", "survey_id"], kind="stable").reset_index(drop=True)


def _window(as_of: int, months: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) in UTC: the `months` months to the end of month `as_of`."""
    end = (month_of(as_of) + pd.DateOffset(months=1)).tz_localize("UTC")
    return end - pd.DateOffset(months=months), end


THEMES_SCHEMA = {
    "segment": "str",
    "theme": "str",
    "comments": "int64",
    "share": "float64",
    "low_share": "float64",
    "example": "str",
}


@table(schema=THEMES_SCHEMA, needs=COMMENTS)
def comment_themes(tables: Tables, as_of: int) -> pd.DataFrame:
    """The most frequent themes of the survey comments given in the window_months to the month end, per account
    segment: theme, comments holding it, their share of the segment's comments, the share with a low score, and
    the latest comment holding it (parameters/voice.yaml)."""
    s = voice_settings()
    start, end = _window(as_of, s.window_months)
    answers = survey_answers(tables, end, start)
    segments = to_pandas(tables.lazy("accounts").select("account_id", "segment")).set_index("account_id").segment
    answers["segment"] = lookup(answers.account_id, segments).to_numpy()
    parts = [themes(group, s).assign(segment=seg) for seg, group in answers.groupby("segment", sort=True)]
    if not parts:
        return empty_frame(THEMES_SCHEMA)
    return pd.concat(parts, ignore_index=True)[list(THEMES_SCHEMA)]


@table(
    schema={
        "survey": "str",
        "answered_at": "datetime_utc",
        "account_id": "str",
        "account_name": "str",
        "score": "float64",
        "comment": "str",
    },
    needs=COMMENTS,
)
def latest_comments(tables: Tables, as_of: int) -> pd.DataFrame:
    """The survey comments given in the month, newest first, with the NPS or CSAT score they came with."""
    start, end = _window(as_of, 1)
    answers = survey_answers(tables, end, start).sort_values(
        ["answered_at", "survey_id"], ascending=False, kind="stable"
    )
    names = account_names(tables)
    answers["account_name"] = lookup(answers.account_id, names).replace("", None).fillna(answers.account_id).to_numpy()
    answers["score"] = answers.score.astype("float64")
    return answers[["survey", "answered_at", "account_id", "account_name", "score", "comment"]].reset_index(drop=True)


@metric(
    label="NPS answers with a comment",
    formula="NPS answers with a survey comment / NPS answers, given in M",
    unit="fraction",
    direction="higher",
    level="operational",
    sources=("C",),
    area="success",
    needs=("accounts", "subscriptions", "nps_responses", "survey_comments"),
    proportion=True,
)
def nps_comment_share(tables: Tables, calendar: pl.DataFrame) -> pd.DataFrame:
    """How many NPS answers say why: the share of the month's answers that came with a comment."""
    nps = to_pandas(tables.lazy("nps_responses").select("response_id", "responded_at"))
    nps = nps[nps.responded_at < data_end(calendar)]
    said = to_pandas(tables.lazy("survey_comments").filter(nw.col("survey") == "nps").select("survey_id"))
    nps["commented"] = nps.response_id.isin(set(said.survey_id)).astype("float64")
    months = calendar_months(calendar).month
    g = nps.groupby(month_start(nps.responded_at)).commented
    n = g.size().reindex(months).fillna(0)
    with_comment = g.sum().reindex(months).fillna(0)
    return month_series(months, safe_ratio(with_comment.to_numpy(), n.to_numpy()), n.to_numpy())


# --------------------------------------------------------------------------- CSM overrides of health
OVERRIDES = ("accounts", "subscriptions", "health_overrides")


def _latest_overrides(tables: Tables, at: pd.DataFrame) -> pd.DataFrame:
    """`at` (account_id, day: a naive day) with each account's latest override dated on or before its day (of one
    day's overrides, the last given) as date, score, band, reason and csm (NaN without one), and `in_force`:
    that override sets a score or a band (one that sets neither clears the override)."""
    o = to_pandas(tables.lazy("health_overrides"))
    for col in ("score", "band", "csm"):
        if col not in o:
            o[col] = np.nan
    o = o[["account_id", "date", "score", "band", "reason", "csm"]].sort_values("date", kind="stable")
    at = at.assign(day=at.day.astype(o.date.dtype)).sort_values("day", kind="stable")
    latest = pd.merge_asof(at, o, left_on="day", right_on="date", by="account_id")
    return latest.assign(in_force=latest.score.notna() | latest.band.notna())


def overrides_in_force(tables: Tables, month_end: pd.Timestamp) -> pd.DataFrame:
    """Each account's latest override dated on or before `month_end` (a naive day), unless it clears (neither
    score nor band): account_id, date, score, band, reason, csm."""
    accounts = to_pandas(tables.lazy("health_overrides").select("account_id").unique())
    last = _latest_overrides(tables, accounts.assign(day=month_end))
    last = last[last.in_force].sort_values("account_id")
    return last[["account_id", "date", "score", "band", "reason", "csm"]].reset_index(drop=True)


@table(
    schema={
        "account_id": "str",
        "account_name": "str",
        "csm_id": "str",
        "health": "float64",
        "band": "str",
        "override_score": "float64",
        "override_band": "str",
        "reason": "str",
        "set_by": "str",
        "since": "datetime",
        "arr": "float64",
    },
    needs=OVERRIDES,
)
def health_overrides_in_force(account_health: pd.DataFrame, tables: Tables, as_of: int) -> pd.DataFrame:
    """The paying accounts whose CSM overrides the computed health at the month end: the computed score and band
    beside the override (a band given without a score keeps the computed score), its reason, who set it and
    since when. The computed score is never changed: the override is shown next to it."""
    end = month_of(as_of) + pd.offsets.MonthEnd(0)
    o = overrides_in_force(tables, end)
    h = account_health.merge(o, on="account_id", suffixes=("", "_o"))
    out = pd.DataFrame(
        {
            "account_id": h.account_id,
            "account_name": h.account_name,
            "csm_id": h.csm_id,
            "health": h.health,
            "band": h.band,
            "override_score": h.score.astype("float64"),
            "override_band": h.band_o,
            "reason": h.reason,
            "set_by": h.csm,
            "since": pd.to_datetime(h.date).astype("datetime64[us]"),
            "arr": h.arr,
        }
    )
    return out.sort_values(["since", "account_id"], ascending=[False, True], kind="stable").reset_index(drop=True)


@metric(
    label="Health overridden by a CSM",
    formula="paying accounts with a CSM health override in force at the end of M / paying accounts at the end of M",
    unit="fraction",
    direction="neutral",
    level="operational",
    sources=("C",),
    area="success",
    needs=OVERRIDES,
    proportion=True,
)
def health_override_share(tables: Tables, calendar: pl.DataFrame, account_mrr: pd.DataFrame) -> pd.DataFrame:
    """How often CSMs overrule the computed health: the share of paying accounts with an override in force."""
    months = calendar_months(calendar).month
    paying = account_mrr[["account_id", "month"]].drop_duplicates()
    latest = _latest_overrides(tables, paying.assign(day=paying.month + pd.offsets.MonthEnd(0)))
    live = latest.in_force.groupby(latest.month).agg(["sum", "size"]).reindex(months)
    counts = live["size"].fillna(0).to_numpy()
    return month_series(months, safe_ratio(live["sum"].fillna(0).to_numpy(), counts), counts)
