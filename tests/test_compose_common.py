"""scikit-learn's estimator checks for the transformers of :mod:`daskml_lab.compose`, on numpy input."""

from __future__ import annotations

from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from daskml_lab.compose import ColumnTransformer, DateTimeFeatures

ESTIMATORS = [
    # the instance scikit-learn checks its own ColumnTransformer with
    ColumnTransformer([("trans1", StandardScaler(), [0, 1])]),
    # the checks' data are numbers: read as Unix times
    DateTimeFeatures(unit="s"),
]

#: scikit-learn's own expected failures for its ColumnTransformer (sklearn/utils/_test_common/
#: instance_generator.py): the checks feed inputs with fewer columns than the instance selects.
_COLUMN_TRANSFORMER = {
    "check_estimators_empty_data_messages": "selects columns 0 and 1; scikit-learn's own fails it too",
    "check_estimators_nan_inf": "passes NaN to its transformer, as scikit-learn's does",
    "check_complex_data": "handed to its transformer, as scikit-learn's does",
    "check_fit2d_1feature": "selects columns 0 and 1 of a 1-column input; scikit-learn's own fails it too",
}

EXPECTED_FAILURES: dict[str, dict[str, str]] = {"ColumnTransformer": _COLUMN_TRANSFORMER}


def expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_transformer(estimator, check):
    check(estimator)
