import pytest

from austack.errors import ConfigError, UnknownNameError
from austack.registry import Registry


def test_register_list_get_and_close_names():
    reg = Registry("loss")

    @reg.register()
    def wce():
        return 1

    reg.register("aunce.paper")(lambda: 2)
    reg.register("aunce.reference")(lambda: 3)
    assert reg.list() == ["aunce.paper", "aunce.reference", "wce"]
    assert reg.list("aunce*") == ["aunce.paper", "aunce.reference"]
    assert reg.get("wce")() == 1 and "wce" in reg and len(reg) == 3
    with pytest.raises(UnknownNameError, match=r"unknown loss 'aunce\.papr'; did you mean 'aunce\.paper'"):
        reg.get("aunce.papr")


def test_duplicate_name_is_an_error():
    reg = Registry("reader")
    reg.register("bp4d")(object)
    with pytest.raises(ConfigError, match="duplicate reader name 'bp4d'"):
        reg.register("bp4d")(object)


def test_deprecated_name_warns_and_resolves():
    reg = Registry("encoder")
    reg.register("swin_base")(object)
    reg.deprecations["swinb"] = "swin_base"
    with pytest.warns(DeprecationWarning, match="renamed 'swin_base'"):
        assert reg.get("swinb") is object
