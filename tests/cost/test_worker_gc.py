"""A gunicorn worker of ``pfcore serve`` freezes its long-lived heap (docs/performance.md, change 19).

Without it every full garbage collection walks the whole app (80-90 ms on the
benchmark machine), a pause for the request that happens to be running.
"""

from __future__ import annotations

import gc
import types
import weakref

import pytest
from gunicorn.app.base import Application
from gunicorn.config import Config

from pfcore import gunicorn_config


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_gunicorn_reads_the_hooks_from_the_config_pfcore_serve_gives_it():
    """Loaded by gunicorn's own loader, as ``--config python:pfcore.gunicorn_config``
    (pfcore/cli.py) loads it: a misspelt hook name would be ignored there."""
    loader = object.__new__(Application)  # without parsing this process's command line
    loader.cfg = Config()
    loader.load_config_from_module_name_or_filename("python:pfcore.gunicorn_config")
    assert loader.cfg.post_worker_init is gunicorn_config.post_worker_init
    assert loader.cfg.post_request is gunicorn_config.post_request


def test_a_worker_freezes_its_heap_once_the_app_is_loaded(unfrozen):
    assert gc.get_freeze_count() == 0
    gunicorn_config.post_worker_init(types.SimpleNamespace())
    assert gc.get_freeze_count() > 1000


def test_and_again_after_its_first_requests_built_their_caches(unfrozen):
    worker = types.SimpleNamespace()
    first, second = gunicorn_config.FREEZE_AFTER_REQUESTS
    for count in range(1, second + 1):
        gunicorn_config.post_request(worker, None, {}, None)
        if count in (first - 1, second - 1):
            assert gc.get_freeze_count() == 0, count
        if count in (first, second):
            assert gc.get_freeze_count() > 1000, count
            gc.unfreeze()
    assert worker.pfcore_requests == second


def test_garbage_is_collected_before_the_freeze(unfrozen):
    class Cycle:
        pass

    garbage = Cycle()
    garbage.me = garbage
    alive = weakref.ref(garbage)
    del garbage
    gunicorn_config.freeze_heap()
    assert alive() is None, "an unreachable cycle was frozen (kept for the worker's life)"
