"""Pluggable fusion strategies: how fitted member models (one per shard) become one predictor.

- :class:`HardVoting` and :class:`SoftVoting`: majority of labels, mean of probabilities (or predictions);
- :class:`WeightedAveraging`: the same mean with uniform, size, validation or user-given weights;
- :class:`Stacking`: a meta-estimator trained on the members' outputs for held-out rows;
- :class:`ParameterAveraging`: one linear model with averaged ``coef_``/``intercept_``;
- :class:`ForestUnion`: all trees pooled into one scikit-learn forest;
- :class:`BestModel`: the one member with the best score on held-out rows.

:func:`fuse` fuses models trained elsewhere. :class:`Fusion` documents the protocol a strategy implements;
:func:`check_members`, :func:`member_score_stats`, :func:`combine_score_stats` and :func:`scores_from_stats` are
the interface a shard ensemble uses to hand its members and their held-out score statistics to a strategy.
The ensembles of :mod:`daskml_lab.ensemble` use these objects; nothing here imports the ensembles.
"""

from daskml_lab.fusion._base import (
    Fusion,
    FusionData,
    check_members,
    combine_score_stats,
    member_score_stats,
    scores_from_stats,
)
from daskml_lab.fusion._best_model import BestModel
from daskml_lab.fusion._forest_union import ForestUnion
from daskml_lab.fusion._fuse import FUSION_NAMES, fuse, resolve_fusion
from daskml_lab.fusion._parameter_averaging import ParameterAveraging
from daskml_lab.fusion._stacking import Stacking
from daskml_lab.fusion._voting import HardVoting, SoftVoting
from daskml_lab.fusion._weighted import WeightedAveraging

__all__ = [
    "FUSION_NAMES",
    "BestModel",
    "ForestUnion",
    "Fusion",
    "FusionData",
    "HardVoting",
    "ParameterAveraging",
    "SoftVoting",
    "Stacking",
    "WeightedAveraging",
    "check_members",
    "combine_score_stats",
    "fuse",
    "member_score_stats",
    "resolve_fusion",
    "scores_from_stats",
]
