import multiprocessing

import pytest

from courselib import startmethod


def test_default_is_spawn(monkeypatch):
    monkeypatch.delenv(startmethod.START_METHOD_ENV, raising=False)
    assert startmethod.start_method() == "spawn"
    assert startmethod.context().get_start_method() == "spawn"


@pytest.mark.parametrize("method", multiprocessing.get_all_start_methods())
def test_env_var_selects_method(monkeypatch, method):
    monkeypatch.setenv(startmethod.START_METHOD_ENV, method)
    assert startmethod.context().get_start_method() == method


def test_unknown_method_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(startmethod.START_METHOD_ENV, "threads")
    with pytest.raises(ValueError, match="MP_START_METHOD='threads'"):
        startmethod.start_method()


def test_context_leaves_global_default_alone(monkeypatch):
    before = multiprocessing.get_start_method(allow_none=True)
    monkeypatch.setenv(startmethod.START_METHOD_ENV, "spawn")
    startmethod.context()
    assert multiprocessing.get_start_method(allow_none=True) == before
