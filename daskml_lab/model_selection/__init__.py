"""Model selection on row-chunked dask arrays: folds over row blocks and cross-validation.

The splitters :class:`KFold`, :class:`StratifiedKFold` and :class:`ShuffleSplit` are scikit-learn's (same
parameters, same folds on in-memory data) and, on dask arrays, choose each block's train and test rows next to
the block. :func:`cross_validate` and :func:`cross_val_score` follow scikit-learn's signatures, scorer names and
result shape: on dask data each fold's rows reach the estimator as lazy dask arrays (nothing is gathered on the
client); on in-memory data the fits of the folds run as concurrent tasks on the cluster, the data placed once.
"""

from daskml_lab.model_selection._gram_paths import ElasticNetCV, LassoCV, RidgeCV
from daskml_lab.model_selection._halving import HalvingGridSearchCV, HalvingRandomSearchCV
from daskml_lab.model_selection._logistic_path import LogisticRegressionCV
from daskml_lab.model_selection._search import GridSearchCV, RandomizedSearchCV
from daskml_lab.model_selection._splitters import KFold, ShuffleSplit, StratifiedKFold
from daskml_lab.model_selection._validation import cross_val_score, cross_validate

__all__ = [
    "ElasticNetCV",
    "GridSearchCV",
    "HalvingGridSearchCV",
    "HalvingRandomSearchCV",
    "KFold",
    "LassoCV",
    "LogisticRegressionCV",
    "RandomizedSearchCV",
    "RidgeCV",
    "ShuffleSplit",
    "StratifiedKFold",
    "cross_val_score",
    "cross_validate",
]
