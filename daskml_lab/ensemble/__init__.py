"""Shard-wise training: any scikit-learn estimator fitted once per shard, where the shard lives, then fused.

- :class:`ShardEnsembleClassifier` and :class:`ShardEnsembleRegressor` train a clone of a base estimator on
  every row block (shard) of a dask array and fuse the shard models with a strategy of
  :mod:`daskml_lab.fusion`;
- :class:`ShardReport` is their per-shard report (``shard_report_``);
- :class:`CascadeSVC` is the Cascade SVM: kernel SVCs per shard whose support vectors are merged and
  retrained up to one SVC;
- :func:`fit_shard_ensembles` fits several shard ensembles (the candidates and folds of a search) with all
  their shard fits in one computation.
"""

from daskml_lab.ensemble._cascade import CascadeSVC
from daskml_lab.ensemble._joint import fit_shard_ensembles
from daskml_lab.ensemble._report import ShardReport
from daskml_lab.ensemble._shard_ensemble import ShardEnsembleClassifier, ShardEnsembleRegressor

__all__ = [
    "CascadeSVC",
    "ShardEnsembleClassifier",
    "ShardEnsembleRegressor",
    "ShardReport",
    "fit_shard_ensembles",
]
