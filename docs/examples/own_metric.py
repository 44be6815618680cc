"""Example: a company's own metric, registered like the built-in ones."""

import pandas as pd

from saaskpi import metric


@metric(
    label="Expansion MRR share",
    formula="expansion MRR in M / (new + expansion + reactivation MRR in M)",
    unit="fraction",
    direction="higher",
    level="supporting",
    sources="S",
    area="revenue",
    target=0.3,
    sampled=False,
)  # a share of the whole month's MRR, not an estimate from a sample
def expansion_mrr_share(mrr_movements: pd.DataFrame) -> pd.DataFrame:
    """Share of the month's added MRR that came from existing customers expanding."""
    added = mrr_movements.new + mrr_movements.expansion + mrr_movements.reactivation
    share = (mrr_movements.expansion / added).where(added > 0)
    return pd.DataFrame(
        {
            "month": mrr_movements.month,
            "value": share,
            "n": mrr_movements.expansion_accounts + mrr_movements.new_accounts + mrr_movements.reactivated_accounts,
        }
    )
