"""Pluggable fusion strategies: how fitted member models (one per shard) become one predictor.

- :class:`HardVoting` and :class:`SoftVoting`: majority of labels, mean of probabilities (or predictions);
- :class:`WeightedAveraging`: the same mean with uniform, size, validation or user-given weights;
- :class:`Stacking`: a meta-estimator trained on the members' outputs for held-out rows;
- :class:`ParameterAveraging`: one linear model with averaged ``coef_``/``intercept_``;
- :class:`ForestUnion`: all trees pooled into one scikit-learn forest.

:func:`fuse` fuses models trained elsewhere. :class:`Fusion` documents the protocol a strategy implements.
The ensembles of :mod:`daskml_lab.ensemble` use these objects; nothing here imports the ensembles.
"""

from daskml_lab.fusion._base import Fusion, FusionData
from daskml_lab.fusion._forest_union import ForestUnion
from daskml_lab.fusion._fuse import FUSION_NAMES, fuse, resolve_fusion
from daskml_lab.fusion._parameter_averaging import ParameterAveraging
from daskml_lab.fusion._stacking import Stacking
from daskml_lab.fusion._voting import HardVoting, SoftVoting
from daskml_lab.fusion._weighted import WeightedAveraging

__all__ = [
    "FUSION_NAMES",
    "ForestUnion",
    "Fusion",
    "FusionData",
    "HardVoting",
    "ParameterAveraging",
    "SoftVoting",
    "Stacking",
    "WeightedAveraging",
    "fuse",
    "resolve_fusion",
]
