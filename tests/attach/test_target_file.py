"""Target files: the reference backend attached through one gives the preset's
verdicts; a malformed file fails early, naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from leaklab.targets import AttachError, is_target_file, resolve_target
from leaklab.session import run_async
from leaklab.targets import UnknownTargetError
from tests.conftest import run_async as run_on_loop

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_TOML = ROOT / "data" / "targets" / "reference.toml"
FAST = dict(runs_dir=False, progress=False, settle_s=0.1, timeline_s=1.5)


def verdicts(target, **kwargs):
    result = run_on_loop(run_async(target, "switch-then-close", 3, **kwargs, **FAST), allow_loop_errors=True)
    s = result.summary()
    return {
        "types": {name: v["verdict"] for name, v in s["types"].items()},
        "tasks": s["tasks"]["verdict"],
        "by_coroutine": {name: v["verdict"] for name, v in s["tasks"]["by_coroutine"].items() if v["verdict"] != "none"},
        "lifecycle": s["lifecycle"],
        "containers": {c["path"]: c["verdict"] for c in s["containers"]},
        "errors": s["errors"],
    }


def test_reference_through_its_target_file_gives_the_preset_verdicts():
    # GIVEN the reference backend with C8 and an init that never finishes
    options = {"heavy_init_s": "inf"}
    # WHEN it runs as the preset and through data/targets/reference.toml
    preset = verdicts("reference", faults="C8", options=options)
    from_file = verdicts(resolve_target(REFERENCE_TOML, faults="C8", options=options))
    # THEN the verdicts are the same, and they are the C8 signature
    assert from_file == preset
    assert preset["types"]["ServiceContext"] == "leak"
    assert preset["tasks"] == "leak"
    assert preset["by_coroutine"] == {"ServiceContext._finish_heavy_init": "leak"}
    close = preset["lifecycle"]["ServiceContext.close"]
    assert (close["calls"], close["expected"], close["objects"]["ran_for"], close["objects"]["of"]) == (3, 3, 3, 3)
    assert preset["errors"] == []


def test_yaml_target_file_and_list_lifecycle(tmp_path):
    # GIVEN a YAML file naming classes by bare name and lifecycle as Class.method
    path = tmp_path / "mine.yaml"
    path.write_text(
        "app: leaklab.backend:create_app\n"
        "watch: {ServiceContext: ServiceContext, MCPClient: leaklab.backend.mcp_client:MCPClient}\n"
        "lifecycle: [ServiceContext.close, MCPClient.aclose]\n"
        "roots: {handler: app.state.handler, backend: leaklab.backend}\n"
        "resources: {cache_dir: {path: cache}}\n"
        "page_dir: web\n"
    )
    # WHEN it is loaded
    target = resolve_target(path, options={"heavy_init_s": 1})
    # THEN bare names resolve to the reference's classes, paths to app_dir
    assert target.watched_types["ServiceContext"] == "leaklab.backend.service_context:ServiceContext"
    assert target.lifecycle == {
        "ServiceContext.close": "leaklab.backend.service_context:ServiceContext.close",
        "MCPClient.aclose": "leaklab.backend.mcp_client:MCPClient.aclose",
    }
    assert target.resources(None) == {"cache_dir": tmp_path / "cache"}
    assert target.page_dir == tmp_path / "web"
    assert target.options == {"heavy_init_s": 1}
    import leaklab.backend

    class App:  # what roots see: attribute chains of the started app
        class state:
            handler = "the handler"

    assert target.roots(App) == {"handler": "the handler", "backend": leaklab.backend}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("app = 'leaklab.backend:create_app'\nwsPath = '/x'\n", "unknown key.*wsPath"),
        ("ws_path = '/client-ws'\n", "'app' must be an import path"),
        ("app = 'no_such_pkg.mod:make'\n", "no_such_pkg"),
        ("app = 'leaklab.backend:no_such_factory'\n", "no_such_factory"),
        ("app = 'leaklab.backend:create_app'\n[watch]\nX = 'leaklab.backend.agent:Nope'\n", "watched type 'X'.*Nope"),
        ("app = 'leaklab.backend:create_app'\n[lifecycle]\n'S.close' = 'leaklab.backend.service_context:ServiceContext.shut'\n",
         "lifecycle 'S.close'.*no method 'shut'"),
        ("app = 'leaklab.backend:create_app'\n[roots]\nh = 'app.state[0]'\n", r"roots\.h"),
        ("app = 'leaklab.backend:create_app'\n[roots]\nm = 'no_such_module_xyz'\n", "no_such_module_xyz"),
        ("app = 'leaklab.backend:create_app'\napp_dir = 'missing-folder'\n", "missing-folder.*does not exist"),
        ("app = 'tests.apps:crash_on_connect'\nfaults = 'C8'\n", "takes no 'faults'"),
        ("app = [1\n", "does not parse"),
        ("app = 'leaklab.backend:create_app'\npage_dir = 3\n", "'page_dir' must be a folder"),
    ],
)
def test_malformed_target_file_names_the_problem(tmp_path, body, message):
    path = tmp_path / "target.toml"
    path.write_text(body)
    with pytest.raises(AttachError, match=message) as info:
        resolve_target(path)
    assert isinstance(info.value, ValueError) and isinstance(info.value, UnknownTargetError)


def test_missing_target_file_and_unknown_spec(tmp_path):
    with pytest.raises(AttachError, match="nope.toml does not exist"):
        resolve_target(tmp_path / "nope.toml")
    with pytest.raises(UnknownTargetError, match="unknown target 'nonsense'; valid: reference, olv"):
        resolve_target("nonsense")
    assert is_target_file("x/y.TOML") and is_target_file("t.yml") and not is_target_file("pkg.mod:app")


def test_root_expression_failing_at_run_time_names_it(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text("app = 'leaklab.backend:create_app'\n[roots]\nh = 'app.state.no_such_thing'\n")
    target = resolve_target(path)

    class App:
        state = type("State", (), {})()

    with pytest.raises(AttachError, match=r"roots\.h: 'app\.state\.no_such_thing': State has no attribute 'no_such_thing'"):
        target.roots(App)
