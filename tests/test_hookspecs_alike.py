"""Hookspecs are typed and worded alike (issue #17, item 6): every parameter and the
return value annotated; the docstring opens with the hook's kind (Contribution,
Decision or Event) and names each parameter with ``:param``. For the core's hooks
and for those plugins offer (charts, licensing)."""

from __future__ import annotations

import inspect

import pytest

import pfcore.hookspecs
import pfcore_plugins.charts.hookspecs
import pfcore_plugins.licensing.hookspecs

MODULES = [pfcore.hookspecs, pfcore_plugins.charts.hookspecs, pfcore_plugins.licensing.hookspecs]
HOOKSPECS = [
    (module.__name__, name, function)
    for module in MODULES
    for name, function in vars(module).items()
    if callable(function) and hasattr(function, "pfcore_spec")
]
KINDS = ("Contribution", "Decision", "Event")


def test_the_hookspecs_are_found():
    assert len(HOOKSPECS) >= 30


@pytest.mark.parametrize("module, name, function", HOOKSPECS, ids=[f"{m}.{n}" for m, n, _f in HOOKSPECS])
def test_a_hookspec_is_typed_and_says_its_kind_and_arguments(module, name, function):
    signature = inspect.signature(function)
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return annotation"
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, f"{name}: {parameter.name} has no annotation"
        assert f":param {parameter.name}:" in function.__doc__, f"{name}: {parameter.name} is not described"
    assert function.__doc__.strip().startswith(KINDS), f"{name}: the docstring does not open with its kind"
    firstresult = function.pfcore_spec["firstresult"]
    assert firstresult == function.__doc__.strip().startswith("Decision"), f"{name}: firstresult and wording differ"
