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
    "libsvm_state",
    "log_event_async",
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


def client_future_keys(client: Any) -> set[Any]:
    """Keys of every future ``client`` holds now, its own and those ``dask.compute`` made for it.

    ``Client.futures`` (key to future state) is an attribute without documentation in distributed 2026.8;
    a client without it gives an empty set (nothing is cancelled then).
    """
    return set(getattr(client, "futures", None) or ())
