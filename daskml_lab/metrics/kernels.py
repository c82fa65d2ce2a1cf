"""The per-block kernels of :mod:`daskml_lab.metrics`, for code that builds its own reductions.

Each score is three pure functions: ``<stat>_chunk`` turns one row block into small sufficient statistics (a
dict of numpy values), ``<stat>_combine`` merges a list of them (exactly, in any grouping: per-block counts and
sums, and for regression a numerically stable merge of weighted means and centred sums of squares after Chan et
al.), and ``<stat>_agg`` turns the merged statistics into the score. The public scores of
:mod:`daskml_lab.metrics` run them as ``daskml-<stat>`` tasks in a tree reduction; fusion runs the same kernels
on the held-out rows of every shard to weight or select members. Leading axes of the predictions are kept: a
``(n_members, n_rows)`` block gives one score per member.

Examples
--------
>>> import numpy as np
>>> from daskml_lab.metrics.kernels import accuracy_agg, accuracy_chunk, accuracy_combine
>>> y = np.array([0, 1, 1, 0])
>>> parts = [accuracy_chunk(y[:2], np.array([0, 0]), None), accuracy_chunk(y[2:], np.array([1, 0]), None)]
>>> float(accuracy_agg(accuracy_combine(parts)))
0.75
"""

from daskml_lab.metrics._classification import _accuracy_agg as accuracy_agg
from daskml_lab.metrics._classification import _accuracy_chunk as accuracy_chunk
from daskml_lab.metrics._classification import _accuracy_combine as accuracy_combine
from daskml_lab.metrics._regression import _mae_agg as mae_agg
from daskml_lab.metrics._regression import _mse_agg as mse_agg
from daskml_lab.metrics._regression import _r2_agg as r2_agg
from daskml_lab.metrics._regression import _regression_chunk as regression_chunk
from daskml_lab.metrics._regression import _regression_combine as regression_combine

__all__ = [
    "accuracy_agg",
    "accuracy_chunk",
    "accuracy_combine",
    "mae_agg",
    "mse_agg",
    "r2_agg",
    "regression_chunk",
    "regression_combine",
]
