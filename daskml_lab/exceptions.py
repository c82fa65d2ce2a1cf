"""Warnings and exceptions raised by daskml_lab.

Every warning the package emits derives from :class:`DaskMLLabWarning`, so that users (and our own test
suite) can filter or escalate them in one place.
"""

from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.exceptions import DataConversionWarning as _SklearnDataConversionWarning

__all__ = [
    "ClusterRequiredError",
    "ConvergenceWarning",
    "DaskMLLabDeprecationWarning",
    "DaskMLLabWarning",
    "DataConversionWarning",
    "ModelVersionWarning",
    "NoWorkersLeftError",
    "NotFittedError",
    "NotStorableError",
    "PartitionedModelLostError",
    "PerformanceWarning",
    "SchedulerLostError",
    "UnresponsiveWorkerError",
    "UntrustedTypesError",
]


class DaskMLLabWarning(UserWarning):
    """Base class of every warning issued by daskml_lab."""


class DaskMLLabDeprecationWarning(DaskMLLabWarning, FutureWarning):
    """A keyword or function is deprecated: it still works, and the message names what replaces it.

    It is also a :class:`FutureWarning`, so that it is shown by default, as scikit-learn's deprecations are.
    """


class DataConversionWarning(DaskMLLabWarning, _SklearnDataConversionWarning):
    """The input was converted (dtype, shape) in a way the user may not expect.

    It is also a :class:`sklearn.exceptions.DataConversionWarning`, so filters written for scikit-learn apply.
    """


class PerformanceWarning(DaskMLLabWarning):
    """The requested operation works but will be slow (for example, one huge row block)."""


class ModelVersionWarning(DaskMLLabWarning):
    """A saved model is loaded by another version of daskml_lab (or scikit-learn) than the one that saved it.

    Loading still works when the stored state matches the current classes; refit or re-save the model with the
    current versions to be sure of its predictions.
    """


class UntrustedTypesError(ValueError):
    """A saved model holds types that :func:`daskml_lab.load` does not trust by default.

    Nothing was created from the file. The message lists the types; after checking them (for instance with
    :func:`daskml_lab.persistence.describe`), pass them to ``load(path, trusted=[...])``.

    Attributes
    ----------
    types : list of str
        The fully qualified names of the untrusted types.
    """

    def __init__(self, message: str, types: list[str] | None = None) -> None:
        super().__init__(message)
        self.types = list(types or [])


class NotStorableError(TypeError):
    """An object that refuses to be pickled or saved, for instance a partitioned model living on the workers.

    The message says where the object lives and how to store it (or what to keep running instead).
    """


class ClusterRequiredError(ValueError):
    """What was asked needs a distributed cluster, and no client is connected.

    For instance loading a model whose partitioned coefficients are larger than the client may hold: they go
    into parameter shards on the workers. Connect first (:func:`daskml_lab.connect` or a
    ``distributed.Client``), then do it again.
    """


class PartitionedModelLostError(RuntimeError):
    """A fitted model kept in its parameter shards can no longer predict: the shards are gone.

    Raised instead of predicting from a missing or empty shard. The message says what was lost (the client
    closed, or the worker of a shard left the cluster) and how to keep such a model.
    """


class SchedulerLostError(ConnectionError):
    """The scheduler of the cluster a computation ran on is gone (the client lost its connection to it).

    Nothing computed on the cluster survives it. Connect to a new scheduler and fit again; a fit given
    ``checkpoint=PATH`` resumes where its last checkpoint left off.

    Attributes
    ----------
    address : str
        The address of the scheduler that is gone.
    situation : str
        What happened, without the advice (for a caller that tells it again with more context).
    """

    def __init__(self, message: str, address: str = "?", situation: str = "") -> None:
        super().__init__(message)
        self.address = address
        self.situation = situation or message


class NoWorkersLeftError(RuntimeError):
    """Every worker of the cluster was lost during a computation, and none joined within a short grace.

    Attributes
    ----------
    n_lost : int or None
        How many workers the computation started with (all lost), when known.
    situation : str
        What happened, without the advice (for a caller that tells it again with more context).
    """

    def __init__(self, message: str, n_lost: int | None = None, situation: str = "") -> None:
        super().__init__(message)
        self.n_lost = n_lost
        self.situation = situation or message


class UnresponsiveWorkerError(RuntimeError):
    """A worker stopped answering (no heartbeat) and holds data that cannot be computed anywhere else.

    Raised instead of waiting for ever when the data were persisted or scattered by the caller (futures: they
    have no lineage to compute them again from) and exist only on the silent worker. The worker is never
    removed: that would destroy the caller's data.

    Attributes
    ----------
    workers : list of str
        The silent workers holding the data.
    situation : str
        What happened, without the advice.
    """

    def __init__(self, message: str, workers: list[str] | None = None, situation: str = "") -> None:
        super().__init__(message)
        self.workers = list(workers or [])
        self.situation = situation or message
