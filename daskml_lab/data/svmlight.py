"""Former home of :func:`read_svmlight`, kept so that ``daskml_lab.data.svmlight.read_svmlight`` keeps working.

The reader lives in :mod:`daskml_lab.data.formats._svmlight` (its per-block work in
:mod:`daskml_lab.data.formats._svmlight_blocks`); import it from :mod:`daskml_lab.data`.
"""

from daskml_lab.data.formats._svmlight import read_svmlight

__all__ = ["read_svmlight"]
