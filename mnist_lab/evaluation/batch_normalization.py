"""How far BatchNormalization's running averages have come after a short run, and the limits that decide on it.

Keras moves the running averages a share 1 - momentum of the way per batch (momentum 0.99: 1 %), so after
n batches momentum ** n of the way is still to go: the lag. Validation, testing and drawings use the
averages, so a net whose averages lag scores below what it has learnt. Two decisions read the lag, with
limits that differ because they decide different things:

- BATCH_NORMALIZATION_LAG_LIMIT (1 %, fewer than about 460 batches): training re-estimates the averages
  when it ends. The pass over a few thousand images is cheap, so even a lag too small to see is removed.
- LOW_SCORE_LAG (5 %, fewer than about 300 batches): only a lag this large makes a run score far below
  what it learnt, so only then do the pages blame a low score on the averages.

LOW_SCORE_GAP is no lag but the symptom: validation accuracy this far below training accuracy, in a run
whose averages were not re-estimated, is the low score the lag explains.
"""

from __future__ import annotations

MOMENTUM = 0.99  # Keras' default
BATCH_NORMALIZATION_LAG_LIMIT = 0.01
LOW_SCORE_LAG = 0.05
LOW_SCORE_GAP = 0.15


def lag(batches: int, momentum: float = MOMENTUM) -> float:
    """The share of the way the running averages still have to go after `batches` updates."""
    return momentum ** batches


def explains_low_score(batches: int) -> bool:
    """Whether averages this far behind make the net score far below what it learnt."""
    return lag(batches) >= LOW_SCORE_LAG
