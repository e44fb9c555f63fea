"""The plugin host: entry-point plugins are found, bad plugins are named, lookups suggest."""

import sys
import textwrap

import pytest

from simgate.errors import SimgateError
from simgate.plugin_manager import Host


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A real installed distribution advertising a module in the ``simgate`` entry-point group."""
    (tmp_path / "acme_sim.py").write_text(textwrap.dedent("""
        from simgate.plugin_manager import hookimpl

        @hookimpl
        def simgate_register_envs(registry):
            registry.add("acme-arm", "acme_sim:make")

        @hookimpl
        def simgate_classify_failure(case, episode):
            return "acme_mode" if episode == "acme" else None
    """))
    info = tmp_path / "acme_sim-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-sim\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[simgate]\nacme = acme_sim\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "acme_sim"
    sys.modules.pop("acme_sim", None)


def test_entry_point_plugin_is_registered(installed_plugin):
    host = Host()
    assert "acme-arm" in host.registries.envs
    assert host.registries.envs.owner("acme-arm") == "acme"
    assert host.classify(None, "acme") == "acme_mode"


def test_autoload_can_be_switched_off(installed_plugin, monkeypatch):
    monkeypatch.setenv("SIMGATE_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "acme-arm" not in Host().registries.envs


def test_builtins_register_through_the_public_hooks():
    host = Host(autoload=False)
    assert host.registries.perturbations.owner("scale_friction") == "simgate.builtin.perturbations"
    assert "Hopper-v5" in host.registries.envs


def test_misspelt_hook_is_named_with_the_plugin(tmp_path, monkeypatch):
    (tmp_path / "typo_plugin.py").write_text(
        "from simgate.plugin_manager import hookimpl\n\n@hookimpl\ndef simgate_register_env(registry):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SimgateError, match="typo_plugin.*simgate_register_env.*simgate/hookspecs.py"):
        Host(project_plugins=["typo_plugin"], autoload=False)


def test_name_clash_blames_both_plugins(tmp_path, monkeypatch):
    (tmp_path / "clash_plugin.py").write_text(
        "from simgate.plugin_manager import hookimpl\n\n@hookimpl\ndef simgate_register_perturbations(registry):\n"
        "    registry.add('scale_friction', object)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SimgateError, match="plugin clash_plugin: perturbation 'scale_friction' is already registered "
                                           "by plugin simgate.builtin.perturbations"):
        Host(project_plugins=["clash_plugin"], autoload=False)


def test_unknown_names_suggest_the_closest():
    regs = Host(autoload=False).registries
    with pytest.raises(SimgateError, match=r"unknown perturbation 'scale_fricton'; did you mean 'scale_friction'\?"):
        regs.perturbations.get("scale_fricton")


def test_missing_project_plugin_module_is_named():
    with pytest.raises(SimgateError, match="'no_such_module'.*simgate_plugins"):
        Host(project_plugins=["no_such_module"], autoload=False)
