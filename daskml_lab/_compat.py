"""The only home for private or version-specific APIs of sklearn, dask, distributed and bokeh.

Each function says which private detail it relies on and what happens when that detail changes: the callers
treat a failure here as "feature unavailable" (logged), never as a crash of a fit.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import dask

__all__ = [
    "add_dashboard_page",
    "client_future_keys",
    "dashboard_prefix",
    "dashboard_template",
    "dashboard_theme",
    "held_keys",
    "hist_gradient_boosting_state",
    "libsvm_state",
    "log_event_async",
    "neighbors_state",
    "recomputable_copy",
    "scheduler_workers",
    "scorer_response_methods",
    "sklearn_tree_types",
    "unique_fused_keys",
]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def unique_fused_keys() -> Iterator[None]:
    """Turn off dask's low-level linear fusion for the computes and persists made inside the block.

    Works around dask/dask#9964 (open): ``dask._task_spec.fuse_linear_task_spec`` names every fused chain of
    tasks after its task names, cut to 115 characters, plus the first four characters of Python's ``hash`` of
    the full name (three hex digits when the hash is negative). Chains whose names agree on their first 115
    characters -- the same pipeline over different blocks or arrays, computed or persisted together -- then
    share a name with a probability of about 1/65,536 to 1/4,096 per pair, and one silently returns the
    other's result (reading an svmlight file in 880 blocks and computing them together swapped about 30).
    Our package names its tasks with long, explicit prefixes, which makes such names common.

    Blockwise fusion (``optimize_blockwise``), which does most of dask's fusing, stays on; only the linear
    chains that it leaves are no longer merged into single tasks. The setting is read when a graph is
    optimised, which :func:`dask.compute`, ``Client.compute`` and ``Client.persist`` do in the calling
    process, so it must surround those calls.
    """
    with dask.config.set({"optimization.fuse.active": False}):
        yield


def sklearn_tree_types() -> tuple[type | None, type | None]:
    """The private classes of scikit-learn's fitted trees that :mod:`daskml_lab.persistence` checks on load.

    ``sklearn.tree._tree.Tree`` (decision trees, forests, classic gradient boosting) and
    ``sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor`` (histogram gradient boosting) are not
    public, yet fitted estimators hold them, and scikit-learn's compiled prediction code follows the child and
    feature indices they store without bounds checks: a model loaded from a file must have them checked
    (``persistence/_checks.py``). They are imported here, the one home of private APIs, rather than there.

    When a class has moved in a newer scikit-learn, ``None`` stands for it: its old name is then absent from
    the files that version writes, and its new name is not in
    :data:`~daskml_lab.persistence.TRUSTED_SKLEARN_TYPES`, so :func:`~daskml_lab.persistence.load` refuses
    such files unless the user trusts the type. No tree is loaded unchecked by default.

    Returns
    -------
    tree, predictor : type or None
        ``Tree`` and ``TreePredictor``.
    """
    tree: type | None = None
    predictor: type | None = None
    try:
        from sklearn.tree._tree import Tree

        tree = Tree
    except ImportError:  # pragma: no cover - present in every supported scikit-learn
        logger.warning("sklearn.tree._tree.Tree moved: model files with decision trees need trusted=.")
    try:
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

        predictor = TreePredictor
    except ImportError:  # pragma: no cover - present in every supported scikit-learn
        logger.warning("TreePredictor moved: model files with histogram gradient boosting need trusted=.")
    return tree, predictor


#: Keys of :func:`libsvm_state` -> the attributes scikit-learn's libsvm estimators keep them in.
_LIBSVM_ATTRIBUTES = {
    "support": "support_",
    "support_vectors": "support_vectors_",
    "n_support": "_n_support",
    "dual_coef": "_dual_coef_",
    "intercept": "_intercept_",
    "public_dual_coef": "dual_coef_",
    "public_intercept": "intercept_",
    "prob_a": "_probA",
    "prob_b": "_probB",
    "class_weight": "class_weight_",
    "shape_fit": "shape_fit_",
    "sparse": "_sparse",
}


def libsvm_state(model: Any) -> dict[str, Any] | None:
    """The arrays a fitted libsvm estimator of scikit-learn hands to libsvm's compiled code when predicting.

    :class:`~sklearn.svm.SVC`, :class:`~sklearn.svm.NuSVC`, :class:`~sklearn.svm.SVR`,
    :class:`~sklearn.svm.NuSVR` and :class:`~sklearn.svm.OneClassSVM` pass ``support_``,
    ``support_vectors_`` and the private ``_n_support``, ``_dual_coef_``, ``_intercept_``, ``_probA`` and
    ``_probB`` to libsvm, which sizes its loops from them without bounds checks; ``_impl`` (a class attribute)
    names the libsvm problem. :mod:`daskml_lab.persistence` checks them on load (``persistence/_checks.py``).

    If a newer scikit-learn renames one of these attributes, the old name is missing from its fitted models
    and the check refuses them (``None`` values below): no libsvm model is loaded unchecked.

    Parameters
    ----------
    model : object
        Any object.

    Returns
    -------
    dict or None
        ``None`` unless ``model`` is one of those estimators and fitted; else the keys ``impl``, ``kernel``
        and those of ``_LIBSVM_ATTRIBUTES``, with ``None`` for a missing attribute.
    """
    from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM

    if not isinstance(model, SVC | NuSVC | SVR | NuSVR | OneClassSVM):
        return None
    stored = vars(model)
    if not any(attribute in stored for attribute in _LIBSVM_ATTRIBUTES.values()):
        return None  # not fitted
    state = {key: stored.get(attribute) for key, attribute in _LIBSVM_ATTRIBUTES.items()}
    state["impl"] = getattr(type(model), "_impl", None)
    state["kernel"] = getattr(model, "kernel", None)
    return state


def hist_gradient_boosting_state(model: Any) -> dict[str, Any] | None:
    """What a fitted histogram gradient boosting estimator hands to its compiled predictor code.

    :class:`~sklearn.ensemble.HistGradientBoostingClassifier` and ``...Regressor`` keep their trees in the
    private ``_predictors`` (one list of ``n_trees_per_iteration_`` predictors per iteration), the constant
    term in ``_baseline_prediction`` and the binning (which features are categorical, their categories) in
    ``_bin_mapper``; the predictor code indexes the bitsets of known categories by feature without bounds
    checks. :mod:`daskml_lab.persistence` checks them on load; a renamed attribute reads as ``None`` and the
    model is refused, never loaded unchecked.

    Returns
    -------
    dict or None
        ``None`` unless ``model`` is such an estimator and fitted; else ``predictors``, ``baseline``,
        ``is_categorical`` and ``n_trees_per_iteration`` (``None`` when missing).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    if not isinstance(model, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return None
    stored = vars(model)
    if "_predictors" not in stored and "n_trees_per_iteration_" not in stored:
        return None  # not fitted
    return {
        "predictors": stored.get("_predictors"),
        "baseline": stored.get("_baseline_prediction"),
        "is_categorical": getattr(stored.get("_bin_mapper"), "is_categorical_", None),
        "n_trees_per_iteration": stored.get("n_trees_per_iteration_"),
    }


def neighbors_state(model: Any) -> dict[str, Any] | None:
    """The training rows and labels a fitted neighbours estimator searches (private ``_fit_X`` and ``_y``).

    Classifiers count neighbour labels in compiled code (``ArgKminClassMode``) into one slot per class,
    indexed by ``_y`` without bounds checks. :mod:`daskml_lab.persistence` checks them on load.

    Returns
    -------
    dict or None
        ``None`` unless ``model`` is a fitted neighbours estimator; else ``fit_X``, ``y`` (``None`` for
        unsupervised ones) and ``n_samples_fit``.
    """
    from sklearn.neighbors import (
        KNeighborsClassifier,
        KNeighborsRegressor,
        NearestNeighbors,
        RadiusNeighborsClassifier,
        RadiusNeighborsRegressor,
    )

    kinds = (
        KNeighborsClassifier,
        KNeighborsRegressor,
        NearestNeighbors,
        RadiusNeighborsClassifier,
        RadiusNeighborsRegressor,
    )
    stored = vars(model) if isinstance(model, kinds) else {}
    if "_fit_X" not in stored:
        return None
    return {"fit_X": stored["_fit_X"], "y": stored.get("_y"), "n_samples_fit": stored.get("n_samples_fit_")}


def _dashboard_bokeh_server(scheduler: Any) -> Any | None:
    """The Bokeh server application of the scheduler's dashboard (the first one, as distributed finds it).

    ``Scheduler.http_application`` is the scheduler's tornado ``RoutingApplication``; distributed adds its
    dashboard to it as a :class:`bokeh.server.tornado.BokehTornado` through ``add_application`` and its
    ``/individual-plots.json`` route lists the ``individual-*`` paths of the first such application.
    """
    try:
        from bokeh.server.tornado import BokehTornado
    except ImportError:  # pragma: no cover - bokeh is a dependency
        return None
    http_application = getattr(scheduler, "http_application", None)
    for application in getattr(http_application, "applications", ()):
        if isinstance(application, BokehTornado):
            return application
    return None


def dashboard_prefix(scheduler: Any) -> str:
    """The URL prefix of the scheduler's dashboard (``""`` unless ``--dashboard-prefix`` was given).

    Distributed does not store its ``http_prefix``; the dashboard's Bokeh server carries it (public
    ``BokehTornado.prefix``).
    """
    server = _dashboard_bokeh_server(scheduler)
    return "" if server is None else str(server.prefix).rstrip("/")


def add_dashboard_page(
    scheduler: Any,
    route: str,
    make_document: Callable[[Any], None],
    *,
    menu_name: str | None = None,
    nav_page: bool = False,
) -> bool:
    """Serve a Bokeh document from the scheduler's own dashboard server, at ``<prefix>/<route>``.

    Private details used (bokeh 3.x, distributed >= 2024.8):

    - Bokeh's ``BokehTornado`` builds its routes only in ``__init__`` from the applications it is given; here
      the same routes (``bokeh.server.urls.per_app_patterns`` plus the app's static route) are added to the
      running dashboard server with tornado's public ``add_handlers``, and the application context is put in
      its private ``_applications`` mapping, which ``app_paths`` (hence distributed's
      ``/individual-plots.json``, read by JupyterLab's Dask extension) and the session clean-up read.
    - ``distributed.dashboard.scheduler.template_variables(scheduler)`` is the memoised dict of the navigation
      bar (``pages``) and of the "More..." menu (``plots``); the dashboard's pages share its lists, so
      appending to them adds our links to pages rendered afterwards.

    Parameters
    ----------
    scheduler : distributed.Scheduler
        A running scheduler.
    route : str
        Path below the dashboard prefix, e.g. ``"individual-daskml-training"``.
    make_document : callable
        ``make_document(doc)`` fills a new :class:`bokeh.document.Document` for each browser session.
    menu_name : str, default=None
        Name in the dashboard's "More..." menu (none when ``None``).
    nav_page : bool, default=False
        Whether to add a link to the navigation bar.

    Returns
    -------
    bool
        Whether the page is served (``False`` without a dashboard, or if the private details changed).
    """
    server = _dashboard_bokeh_server(scheduler)
    if server is None:
        logger.info("The scheduler has no Bokeh dashboard; the page /%s is not served.", route)
        return False
    path = "/" + route.strip("/")
    try:
        from bokeh.application import Application
        from bokeh.application.handlers.document_lifecycle import DocumentLifecycleHandler
        from bokeh.application.handlers.function import FunctionHandler
        from bokeh.server.contexts import ApplicationContext
        from bokeh.server.tornado import create_static_handler
        from bokeh.server.urls import per_app_patterns
        from bokeh.server.views.ws import WSHandler

        applications = server._applications
        if path in applications:
            return True
        application = Application(FunctionHandler(make_document))
        application.add(DocumentLifecycleHandler())
        context = ApplicationContext(application, io_loop=server.io_loop, url=path)
        prefix = str(server.prefix)
        patterns: list[tuple[str, Any, dict[str, Any]]] = []
        for suffix, handler, *_ in per_app_patterns:
            options: dict[str, Any] = {"application_context": context}
            if issubclass(handler, WSHandler):
                options["compression_level"] = None
                options["mem_level"] = None
            patterns.append((prefix + path + suffix, handler, options))
        websocket_path = next(route for route, _, _ in patterns if route.endswith("/ws"))
        for _, _, options in patterns:
            options["bokeh_websocket_path"] = websocket_path
        patterns.append(create_static_handler(prefix, path, application))
        server.add_handlers(r".*", patterns)
        applications[path] = context
        server.io_loop.add_callback(context.run_load_hook)
    except Exception:  # the private layout of bokeh changed: no page, but the fit goes on
        logger.warning("Could not add the page %s to the Dask dashboard.", path, exc_info=True)
        return False
    _add_dashboard_links(scheduler, route.strip("/"), menu_name=menu_name, nav_page=nav_page)
    return True


def _add_dashboard_links(scheduler: Any, route: str, *, menu_name: str | None, nav_page: bool) -> None:
    try:
        from distributed.dashboard.scheduler import template_variables

        variables = template_variables(scheduler)
        if menu_name is not None and all(plot.get("url") != route for plot in variables["plots"]):
            variables["plots"].append({"url": route, "name": menu_name})
            variables["plots"].sort(key=lambda plot: plot["name"])
        if nav_page and route not in variables["pages"]:
            variables["pages"].append(route)
    except Exception:  # links are a convenience; the page itself is served
        logger.debug("Could not add links to %s in the dashboard's menus.", route, exc_info=True)


def dashboard_template(scheduler: Any) -> tuple[Any, dict[str, Any]] | None:
    """Distributed's page template with the navigation bar, and its variables; ``None`` if unavailable.

    Uses the Jinja environment of ``distributed.dashboard.components.scheduler`` (module attribute ``env``)
    and its ``simple.html`` template, as the dashboard's own full pages do.
    """
    try:
        from distributed.dashboard.components.scheduler import env
        from distributed.dashboard.scheduler import template_variables

        server = _dashboard_bokeh_server(scheduler)
        prefix = "/" if server is None or not server.prefix else str(server.prefix).rstrip("/") + "/"
        return env.get_template("simple.html"), {"prefix": prefix, **template_variables(scheduler)}
    except Exception:
        logger.debug("The dashboard's page template is unavailable.", exc_info=True)
        return None


def dashboard_theme() -> Any | None:
    """The Bokeh theme of the dashboard's plots (``BOKEH_THEME`` of ``distributed.dashboard.components``)."""
    try:
        from distributed.dashboard.components.scheduler import BOKEH_THEME
    except Exception:
        return None
    return BOKEH_THEME


async def log_event_async(client: Any, topic: str, msg: Any) -> None:
    """``Client.log_event`` without blocking the calling thread: await the same scheduler RPC.

    ``Client.log_event`` is ``client.sync(client.scheduler.log_event, topic=..., msg=...)``; this coroutine
    awaits that RPC on the client's event loop (``client.scheduler`` is the client's scheduler RPC).
    """
    await client.scheduler.log_event(topic=topic, msg=msg)


def add_task_stream_record(
    scheduler: Any, key: str, worker: str, thread: int, start: float, stop: float, status: str
) -> None:
    """Add a finished piece of work that was not a Dask task to the scheduler's task stream.

    The dashboard's task stream and :func:`distributed.get_task_stream` read the scheduler plugin named
    ``"task-stream"`` (:class:`distributed.diagnostics.task_stream.TaskStreamPlugin`), which records the keyword
    arguments of the ``processing -> memory`` transitions the scheduler reports to plugins. The record's fields
    (``startstops``, ``worker``, ``thread``, ``status``) are the ones distributed's ``rectangles`` reads; they are
    not a documented format, hence this module. The plugin is added when the scheduler does not have it yet,
    as the dashboard does on first use.
    """
    from distributed.diagnostics.task_stream import TaskStreamPlugin

    plugin = scheduler.plugins.get(TaskStreamPlugin.name)
    if plugin is None:
        plugin = TaskStreamPlugin(scheduler)
        scheduler.add_plugin(plugin)
    plugin.transition(
        key,
        "processing",
        "memory" if status == "OK" else "erred",
        startstops=({"action": "compute", "start": start, "stop": stop},),
        worker=worker,
        thread=thread,
        status=status,
        nbytes=0,
        type="daskml actor call",
    )


def scheduler_workers(client: Any) -> dict[str, dict[str, Any]]:
    """The scheduler's workers now (address -> the scheduler's record of it), asked in one request.

    ``Client.scheduler_info()`` is not safe for this: it asks the scheduler, stores the answer on the client,
    then returns the stored answer, and the client's periodic refresh (every
    ``distributed.client.scheduler-info-interval``) stores in the meantime an answer fetched with
    ``n_workers=0``, whose ``"workers"`` is empty (distributed >= 2025.4). Under CPU contention that window
    is wide enough for a watch to see every worker "gone". Awaiting the scheduler's ``identity`` RPC (what
    ``scheduler_info`` awaits) returns this request's own answer. Its records carry ``last_seen``, the
    scheduler's time of the worker's last heartbeat.
    """
    try:
        identity = client.sync(client.scheduler.identity, n_workers=-1)
    except TypeError:  # a scheduler older than the n_workers argument returns every worker
        identity = client.sync(client.scheduler.identity)
    return dict(identity["workers"])


def recomputable_copy(collection: Any, tag: str) -> Any:
    """A delayed copy of a one-block ``collection`` whose every task, the whole lineage, has a new key.

    What :func:`dask.graph_manipulation.clone` promises, which it does not deliver for graphs of dask's task
    specification (dask 2026.8: a renamed key is still referenced under its old name, and the copy cannot be
    computed). The graph is culled to the block's lineage and every key gets ``-<tag>`` appended to its name
    (``dask._task_spec``: ``convert_legacy_graph``, ``cull`` and ``GraphNode.substitute``, all private).
    Data persisted by a client (futures) are not copied: they keep their keys.
    """
    from dask._task_spec import DataNode, convert_legacy_graph, cull
    from dask.delayed import Delayed

    (key,) = collection.__dask_keys__() if not isinstance(collection, Delayed) else (collection.key,)
    while isinstance(key, list):  # a one-block array: [[key]]
        (key,) = key
    graph = cull(convert_legacy_graph(dict(collection.__dask_graph__())), [key])

    def renamed(old: Any) -> Any:
        if isinstance(old, tuple):
            return (f"{old[0]}-{tag}", *old[1:])
        return f"{old}-{tag}"

    futures = {k for k, node in graph.items() if isinstance(node, DataNode) and _holds_future(node)}
    subs = {k: renamed(k) for k in graph if k not in futures}
    copy = {subs.get(k, k): node.substitute(subs, key=subs.get(k, k)) for k, node in graph.items()}
    return Delayed(subs.get(key, key), copy)


def held_keys(collection: Any) -> set[Any]:
    """Keys of data already on the cluster that ``collection`` needs: persisted or scattered, without lineage.

    A persisted array keeps its futures in its graph, but a graph built from its blocks (``to_delayed``, then
    ``dask.delayed``) may only refer to their keys, defined nowhere in it: both are found here (the task
    specification's ``dependencies`` and ``DataNode`` of ``dask._task_spec``, private). These are exactly the
    keys :func:`recomputable_copy` cannot copy.
    """
    from dask._task_spec import DataNode, convert_legacy_graph

    graph = convert_legacy_graph(dict(collection.__dask_graph__()))
    keys = {k for k, node in graph.items() if isinstance(node, DataNode) and _holds_future(node)}
    for node in graph.values():
        keys |= {dep for dep in node.dependencies if dep not in graph}
    return keys


def _holds_future(node: Any) -> bool:
    from distributed import Future

    return isinstance(getattr(node, "value", None), Future)


def client_future_keys(client: Any) -> set[Any]:
    """Keys of every future ``client`` holds now, its own and those ``dask.compute`` made for it.

    ``Client.futures`` (key to future state) is an attribute without documentation in distributed 2026.8;
    a client without it gives an empty set (nothing is cancelled then).
    """
    return set(getattr(client, "futures", None) or ())


def scorer_response_methods(scorer: Any) -> tuple[str, ...] | None:
    """The prediction methods a scikit-learn scorer calls, in its order of preference (``None``: unknown).

    Reads ``_response_method`` of the scorers :func:`sklearn.metrics.get_scorer` and
    :func:`sklearn.metrics.make_scorer` build (scikit-learn >= 1.4: ``"predict"``, or a tuple such as
    ``("decision_function", "predict_proba")``). Callables and scorers without it give ``None``: the caller
    then checks nothing before training, and the scorer's own error surfaces when it runs.
    """
    methods = getattr(scorer, "_response_method", None)
    if isinstance(methods, str):
        return (methods,)
    if isinstance(methods, list | tuple) and all(isinstance(m, str) for m in methods):
        return tuple(methods)
    return None
