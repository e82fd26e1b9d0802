"""The olv profile on a small upstream-shaped app (tests/attach/olv_app):
built as upstream builds itself, offline through the fake OpenAI server, the
user's files untouched, clear errors. Its planted leak found, from the
command line: test_olv_end_to_end.py."""

from __future__ import annotations

import logging
import os
import shutil

import pytest
import yaml

from leaklab.targets import AttachError, resolve_target
from leaklab.targets.olv import find_ws_handler, olv_roots
from leaklab.targets.olv.config import patch_olv_config
from leaklab.serving import ServerStartError
from leaklab.session import LeakSession
from tests.attach.conftest import OLV_APP, tree_digest, workdirs
from tests.conftest import run_async

FAST = dict(runs_dir=False, progress=False, settle_s=0.1, timeline_s=1.0)


def _refuse_symlinks(*args, **kwargs):
    # what an unprivileged Windows account gets
    raise OSError(22, "A required privilege is not held by the client", None, 1314)


@pytest.mark.parametrize("links", ["allowed", "refused (Windows without the privilege, simulated)"])
def test_runs_offline_in_a_temporary_folder_and_user_files_untouched(olv_app, links, monkeypatch):
    # GIVEN a copy of the app, its MCP off (its servers, started from the
    # command line: test_olv_end_to_end.py), its tree and conf.yaml recorded
    if links != "allowed":
        monkeypatch.setattr(os, "symlink", _refuse_symlinks)
    conf = olv_app / "conf.yaml"
    conf.write_text(conf.read_text().replace("use_mcpp: true", "use_mcpp: false"))
    conf_bytes = conf.read_bytes()
    tree_before = tree_digest(olv_app)
    target = resolve_target("olv", app_dir=olv_app)
    seen = {}

    async def main():
        session = LeakSession(target, **FAST)
        await session.start()
        try:
            attachment = session.app.state.leaklab_olv
            seen["cwd"] = os.getcwd()
            seen["workdir"] = attachment.workdir
            seen["conf"] = yaml.safe_load(attachment.conf_path.read_text())
            seen["roots"] = sorted(olv_roots(session.app, "/client-ws", "open_llm_vtuber"))
            seen["links"] = sorted(p.name for p in attachment.workdir.iterdir() if p.is_symlink())
            seen["notes"] = list(attachment.notes)
            result = await session.run("switch-then-close", cycles=1)
            seen["requests"] = attachment.requests_served
        finally:
            seen["orphans"] = await session.stop()
        return result

    # WHEN a switch-then-close cycle runs through the olv profile (what the
    # planted leak looks like in the summary, and that close() still runs, is
    # test_olv_end_to_end.py's, from the command line)
    result = run_async(main(), allow_loop_errors=True)
    assert result.errors == [] and result.cycles_done == 1
    # THEN the warm-up called the LLM at the fake: natori's paid API included
    assert seen["requests"] >= 1
    llm = seen["conf"]["character_config"]["agent_config"]["llm_configs"]["openai_compatible_llm"]
    assert llm["base_url"].startswith("http://127.0.0.1:") and llm["model"] == "fake-llm"
    # the app ran in the temporary folder, its roots found through the routes
    assert seen["cwd"] == str(seen["workdir"])
    assert seen["roots"] == ["default_context", "handler", "message_handler", "package"]
    # without symbolic links, the small entries were copied, and it says so
    if links != "allowed":
        assert seen["links"] == []
        assert any(n.startswith("symbolic links refused here:") and "copied" in n for n in seen["notes"]), seen["notes"]
    else:
        assert "src" in seen["links"]
    # the user's files are byte for byte what they were; nothing was added
    assert (olv_app / "conf.yaml").read_bytes() == conf_bytes
    assert tree_digest(olv_app) == tree_before
    # and nothing is left: fake thread, temporary folder (checked by the fixtures too)
    assert seen["orphans"]["threads"] == 0
    assert not seen["workdir"].exists()


def test_ws_handler_found_through_the_routes(olv_app):
    target = resolve_target("olv", app_dir=olv_app)
    app = target.make_app()
    try:
        handler = find_ws_handler(app)
        roots = olv_roots(app, "/client-ws", "open_llm_vtuber")
        assert type(handler).__name__ == "WebSocketHandler"
        assert roots["handler"] is handler
        assert roots["default_context"] is handler.default_context_cache
        assert type(roots["message_handler"]).__name__ == "MessageHandler"
    finally:
        app.state.leaklab_olv.close()


def test_patch_redirects_every_llm_and_tts_and_keeps_the_rest():
    conf = yaml.safe_load((OLV_APP / "conf.yaml").read_text())
    url = "http://127.0.0.1:9/v1"
    out = patch_olv_config(conf, url)
    character = out["character_config"]
    agent = character["agent_config"]
    assert agent["agent_settings"]["basic_memory_agent"]["llm_provider"] == "openai_compatible_llm"
    assert all(c["base_url"] == url for c in agent["llm_configs"].values())
    assert character["tts_config"]["tts_model"] == "openai_tts"
    assert character["tts_config"]["openai_tts"]["base_url"] == url
    assert character["asr_config"] == conf["character_config"]["asr_config"]
    assert out["system_config"] == conf["system_config"]
    assert conf["character_config"]["agent_config"]["llm_configs"]["ollama_llm"]["base_url"] != url  # a copy
    # a character file: only what it sets is redirected
    alt = {"character_config": {"agent_config": {"agent_settings": {"basic_memory_agent": {"llm_provider": "openai_llm"}},
                                                 "llm_configs": {"openai_llm": {"base_url": "https://api.openai.com/v1",
                                                                                "llm_api_key": "sk-real"}}}}}
    patched = patch_olv_config(alt, url, character_only=True)["character_config"]["agent_config"]
    assert patched["agent_settings"]["basic_memory_agent"]["llm_provider"] == "openai_compatible_llm"
    assert patched["llm_configs"]["openai_llm"] == {"base_url": url, "llm_api_key": "leaklab-fake-key"}
    assert "tts_config" not in patch_olv_config(alt, url, character_only=True)["character_config"]


def test_missing_app_dir_and_conf(tmp_path, olv_app):
    with pytest.raises(AttachError, match=r"app dir .*nowhere does not exist"):
        resolve_target("olv", app_dir=tmp_path / "nowhere")
    with pytest.raises(AttachError, match="no app dir given"):
        resolve_target("olv")
    (olv_app / "conf.yaml").unlink()
    with pytest.raises(AttachError, match=rf"no conf\.yaml in {olv_app}"):
        resolve_target("olv", app_dir=olv_app)


def test_import_error_names_the_module(olv_app):
    # GIVEN an app whose TTS factory needs a package that is not installed
    factory = olv_app / "src" / "open_llm_vtuber" / "tts" / "tts_factory.py"
    factory.write_text(factory.read_text().replace("from typing import Any\n", "from typing import Any\n\nimport edge_tts_not_installed\n"))
    # WHEN it is attached THEN the error names the missing module and where it was imported
    with pytest.raises(AttachError) as info:
        resolve_target("olv", app_dir=olv_app)
    message = str(info.value)
    assert "'edge_tts_not_installed'" in message
    assert "open_llm_vtuber.server" in message
    assert "tts_factory.py:7" in message
    # and no half-imported package is left behind
    import sys

    assert "open_llm_vtuber.service_context" not in sys.modules


def test_no_package_and_faults_refused(olv_app):
    with pytest.raises(AttachError, match="faults apply to the reference backend"):
        resolve_target("olv", app_dir=olv_app, faults="C8")
    with pytest.raises(AttachError, match="unknown option 'heavy_init_s'"):
        resolve_target("olv", app_dir=olv_app, options={"heavy_init_s": 1})
    shutil.rmtree(olv_app / "src")
    with pytest.raises(AttachError, match=r"no open_llm_vtuber package .*src/open_llm_vtuber/server\.py"):
        resolve_target("olv", app_dir=olv_app)


def test_flat_layout_imports(olv_app):
    shutil.move(olv_app / "src" / "open_llm_vtuber", olv_app / "open_llm_vtuber")
    target = resolve_target("olv", app_dir=olv_app)
    assert target.watched_types["ServiceContext"] == "open_llm_vtuber.service_context:ServiceContext"
    import open_llm_vtuber

    assert os.path.dirname(open_llm_vtuber.__file__) == str(olv_app / "open_llm_vtuber")


def test_server_that_fails_to_build_is_an_attach_error(olv_app):
    # GIVEN an app folder without live2d-models/ (a static mount needs it)
    shutil.rmtree(olv_app / "live2d-models")
    target = resolve_target("olv", app_dir=olv_app)

    async def main():
        await LeakSession(target, **FAST).start()

    # WHEN a session starts THEN WebSocketServer(config) fails with a clear error
    with pytest.raises(AttachError, match=r"WebSocketServer\(config\) failed: RuntimeError: Directory 'live2d-models' does not exist"):
        run_async(main())


def test_server_that_fails_to_initialize_is_reported_and_cleaned_up(olv_app, caplog):
    # GIVEN a conf.yaml naming a Live2D model that model_dict.json does not have
    conf = olv_app / "conf.yaml"
    conf.write_text(conf.read_text().replace("live2d_model_name: 'mao_pro'", "live2d_model_name: 'no_such_model'"))
    target = resolve_target("olv", app_dir=olv_app)
    before = workdirs()

    async def main():
        await LeakSession(target, **FAST).start()

    # WHEN a session starts THEN the start fails, the log says why, nothing is left
    with caplog.at_level(logging.ERROR), pytest.raises((AttachError, ServerStartError)):
        run_async(main())
    assert "initialize() failed: KeyError" in caplog.text and "no_such_model" in caplog.text
    assert workdirs() <= before
