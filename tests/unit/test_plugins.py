"""The plugin manager: entry points, owning-adapter dispatch, check(), the typed facade."""

from __future__ import annotations

from typing import Any

import pytest
from toy_adapter import ToyAdapter, ToyRequest, ToyResponse

from kc_core.plugins import AdapterNotFound, PluginError, Plugins, hookimpl


class OtherRequest:
    """A request of another framework."""


class SpecialRequest(ToyRequest):
    """A subclass a more specific adapter claims."""


def test_entry_points_load_the_installed_example_adapter() -> None:
    pytest.importorskip("kc_bottle", reason="pip install ./examples/bottle_adapter")
    assert "bottle" in Plugins().adapter_names()


def test_an_empty_manager_has_no_adapter() -> None:
    plugins = Plugins(load_entry_points=False)
    assert plugins.adapter_names() == []
    with pytest.raises(AdapterNotFound, match=r"no kc adapter handles .*ToyRequest"):
        plugins.adapter_for(ToyRequest())


def test_adapter_hooks_are_called_on_the_owning_adapter_only() -> None:
    plugins = Plugins(load_entry_points=False)
    toy, other = ToyAdapter(ToyRequest), ToyAdapter(OtherRequest)
    plugins.register(toy, name="toy")
    plugins.register(other, name="other")
    adapter = plugins.adapter_for(ToyRequest(url="http://app.test/a"))
    assert adapter.name == "toy"
    assert adapter.path(ToyRequest(url="http://app.test/a")) == "/a"
    assert (toy.calls, other.calls) == (["path"], [])
    assert plugins.adapter_for(OtherRequest()).name == "other"


def test_the_most_specific_request_type_wins() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(SpecialRequest), name="special")
    plugins.register(ToyAdapter(ToyRequest), name="general")  # registered last, still loses
    assert plugins.adapter_for(SpecialRequest()).name == "special"
    assert plugins.adapter_for(ToyRequest()).name == "general"


def test_of_two_adapters_for_one_type_the_last_registered_wins() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="installed")
    plugins.register(ToyAdapter(), name="override")
    assert plugins.adapter_for(ToyRequest()).name == "override"


def test_adapter_is_resolved_once_per_request_type() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="toy")
    assert plugins.adapter_for(ToyRequest()) is plugins.adapter_for(ToyRequest())


def test_check_fails_loudly_on_a_misspelt_hook() -> None:
    class Typo(ToyAdapter):
        @hookimpl
        def kc_reqeust_path(self, request: ToyRequest) -> str:
            return "/"

    plugins = Plugins(load_entry_points=False)
    plugins.register(Typo(), name="typo")
    with pytest.raises(PluginError, match="kc_reqeust_path"):
        plugins.check()


def test_unmarked_kc_functions_are_hooks_too_so_their_typos_fail_as_well() -> None:
    class Unmarked:
        def kc_after_lgoin(self, request: Any, tokens: Any, identity: Any) -> None:
            pass

    plugins = Plugins(load_entry_points=False)
    plugins.register(Unmarked(), name="unmarked")
    with pytest.raises(PluginError, match="kc_after_lgoin"):
        plugins.check()


def test_check_refuses_adapter_hooks_without_request_types() -> None:
    class Headless:
        @hookimpl
        def kc_request_path(self, request: Any) -> str:
            return "/"

    plugins = Plugins(load_entry_points=False)
    plugins.register(Headless(), name="headless")
    with pytest.raises(PluginError, match="headless implements kc_request_path but not"):
        plugins.check()


def test_an_adapter_missing_a_required_hook_is_named() -> None:
    class Partial(ToyAdapter):
        kc_response = None  # type: ignore[assignment]

    plugins = Plugins(load_entry_points=False)
    plugins.register(Partial(), name="partial")
    with pytest.raises(PluginError, match="adapter partial does not implement kc_response"):
        plugins.adapter_for(ToyRequest())


def test_optional_adapter_hooks_have_defaults() -> None:
    class Minimal(ToyAdapter):
        kc_session_rotate = None  # type: ignore[assignment]

    plugins = Plugins(load_entry_points=False)
    plugins.register(Minimal(), name="minimal")
    adapter = plugins.adapter_for(ToyRequest(url="https://app.test/"))
    assert adapter.client_address(ToyRequest()) is None
    assert adapter.is_secure(ToyRequest(url="https://app.test/")) is True
    assert adapter.is_secure(ToyRequest(url="http://app.test/")) is False
    assert adapter.rotate_session(ToyRequest()) is None


def test_an_implementation_may_take_fewer_arguments_than_its_spec() -> None:
    class Terse(ToyAdapter):
        @hookimpl
        def kc_redirect(self, location: str) -> ToyResponse:  # type: ignore[override]
            return ToyResponse(303, headers=(("Location", location),))

    plugins = Plugins(load_entry_points=False)
    plugins.register(Terse(), name="terse")
    response = plugins.adapter_for(ToyRequest()).redirect(ToyRequest(), "/next", [])
    assert response == ToyResponse(303, headers=(("Location", "/next"),))


def test_registering_a_plugin_drops_the_resolved_adapters() -> None:
    plugins = Plugins(load_entry_points=False)
    plugins.register(ToyAdapter(), name="first")
    assert plugins.adapter_for(ToyRequest()).name == "first"
    plugins.register(ToyAdapter(), name="second")
    assert plugins.adapter_for(ToyRequest()).name == "second"
    plugins.unregister(plugins.manager.get_plugin("second"))
    assert plugins.adapter_for(ToyRequest()).name == "first"
