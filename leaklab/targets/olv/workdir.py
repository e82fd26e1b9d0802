"""The temporary app folder an olv app runs in, and the fake it talks to."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..._compat import chdir
from ..._platform import COPY_LIMIT_BYTES, link_or_copy
from ..base import AttachError
from .config import alts_dir, describe_changes, dump_yaml, patch_olv_config

logger = logging.getLogger("leaklab.targets.olv")

#: Folders a run writes into: copies (or fresh and empty) in the temporary working folder.
OLV_WRITABLE = ("cache", "chat_history", "logs")
#: Of them, the app's stored state: copied from the user's folder (``data="copy"``).
OLV_STATE = ("chat_history", "cache")
#: At most this much of the user's state is copied (newest files first).
DATA_LIMIT_BYTES = 512 * 1024 * 1024
_OLV_SKIP = {".git", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


class OlvAttachment:
    """What the olv profile set up for one build of the app: the fake
    OpenAI-compatible server and the temporary working folder. Found on
    ``app.state.leaklab_olv``; :meth:`close` (idempotent) runs at the app's
    shutdown, or when the app is collected, or at interpreter exit.

    Attributes:
        app_dir: the user's folder (read, never written).
        workdir: the temporary working folder (``None`` before :meth:`prepare`).
        conf_path: the patched copy of ``conf.yaml``.
        base_url: the fake's ``http://127.0.0.1:PORT/v1``.
        fake: the :class:`~leaklab.fakes.openai.FakeOpenAIServer`.
    """

    def __init__(self, app_dir: Path, options: Mapping[str, Any]) -> None:
        from ...fakes.openai import FakeOpenAIServer

        self.app_dir = app_dir
        self.cwd_mode: str = options["cwd"]
        self.data_mode: str = options.get("data", "copy")
        self.data_limit_bytes: int = int(options.get("data_limit_mb", DATA_LIMIT_BYTES >> 20)) << 20
        #: the port the app is told it listens on, and that leaklab binds (after :meth:`prepare`)
        self.port: int | None = None
        self.conf_name: str = options["conf"]
        self.fake = FakeOpenAIServer(
            sentences=options["fake_sentences"], latency_per_kchar_s=options["fake_latency_per_kchar_s"]
        )
        self.workdir: Path | None = None
        self.conf_path: Path | None = None
        self.base_url: str | None = None
        self.closed = False
        #: the patched config (after :meth:`prepare`)
        self.patched_conf: dict[str, Any] = {}
        #: what leaklab changed to run the app here, in words
        self.notes: list[str] = []
        self._saved_cwd: str | None = None
        self._saved_bytecode: bool | None = None

    @property
    def requests_served(self) -> int:
        """HTTP requests the fake LLM/TTS server received."""
        return self.fake.requests_served

    def prepare(self, conf: Mapping[str, Any]) -> Path:
        """Start the fake; build the working folder with the patched config.

        Returns:
            The patched ``conf.yaml``.
        """
        try:
            self.base_url = self.fake.start()
        except RuntimeError as exc:
            raise AttachError(f"olv profile: the fake OpenAI server did not start: {exc}") from None
        self.workdir = Path(tempfile.mkdtemp(prefix="leaklab-olv-"))
        conf = dict(conf)
        alts_src = (self.app_dir / alts_dir(conf)).resolve()
        if alts_src.parent == self.app_dir:
            alts_name = alts_src.name
        else:
            # Not a plain sub-folder: the patched copy goes to a sub-folder of
            # the working folder, and the temporary config says so.
            alts_name = "leaklab-characters"
            conf["system_config"] = {**(conf.get("system_config") or {}), "config_alts_dir": alts_name}
        linked: dict[str, list[str]] = {}
        for entry in sorted(self.app_dir.iterdir()):
            if entry.name in _OLV_SKIP or entry.name in OLV_WRITABLE or entry.name == self.conf_name:
                continue
            if entry.name == alts_name:
                continue
            # Links, not copies: live2d-models can weigh hundreds of MB. The app
            # only reads these (a write through a link would reach the user's file).
            # Where links are refused (Windows without the privilege): a
            # junction, a hard link, or a copy of what is small.
            how = link_or_copy(entry, self.workdir / entry.name)
            if how != "symlink":
                linked.setdefault(how, []).append(entry.name)
        for how, names in linked.items():
            what = {"junction": "linked by directory junction", "hardlink": "hard-linked", "copy": "copied",
                    "skipped": f"too large to copy (over {COPY_LIMIT_BYTES >> 20} MiB), not in the working folder"}[how]
            self.notes.append(f"symbolic links refused here: {', '.join(names)} {what}")
        for name in OLV_WRITABLE:
            (self.workdir / name).mkdir()
        self._copy_state()
        self._copy_characters(alts_src, self.workdir / alts_name)
        self.conf_path = self.workdir / self.conf_name
        # The app's own idea of its address made true: upstream's proxy
        # dials ws://{host}:{port}/client-ws from the config, so the port is
        # chosen now, written into the copy, and bound exactly there.
        self.port = free_port()
        system = dict(conf.get("system_config") or {})
        was = f"{system.get('host', '?')}:{system.get('port', '?')}"
        system.update(host="127.0.0.1", port=self.port)
        conf["system_config"] = system
        self.patched_conf = patch_olv_config(conf, self.base_url)
        dump_yaml(self.patched_conf, self.conf_path)
        self.notes.extend(describe_changes(conf, self.patched_conf))
        self.notes.append(f"address: 127.0.0.1:{self.port}, written into the config copy and bound by leaklab "
                          f"(conf.yaml: {was})")
        return self.conf_path

    def _copy_state(self) -> None:
        """Copy the user's stored state (``chat_history/``, ``cache/``) into
        the working folder, newest files first, up to ``data_limit_bytes``;
        the originals are only read. ``data="empty"``: nothing copied."""
        assert self.workdir is not None
        if self.data_mode == "empty":
            self.notes.append("data: none copied (data=empty): the app starts with empty "
                              + ", ".join(f"{n}/" for n in OLV_STATE))
            return
        start = time.monotonic()
        files: list[tuple[float, int, Path, Path]] = []
        for name in OLV_STATE:
            src = self.app_dir / name
            if not src.is_dir() or src.is_symlink():
                continue
            for path in src.rglob("*"):
                try:
                    if path.is_file() and not path.is_symlink():
                        st = path.stat()
                        files.append((st.st_mtime, st.st_size, path, self.workdir / name / path.relative_to(src)))
                except OSError:
                    continue
        if not files:
            return
        files.sort(key=lambda f: -f[0])
        copied = copied_bytes = left = left_bytes = 0
        for _mtime, size, src, dst in files:
            if copied_bytes + size > self.data_limit_bytes:
                left += 1
                left_bytes += size
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(src, dst)
            except OSError as exc:
                logger.warning("olv profile: could not copy %s: %s", src, exc)
                continue
            copied += 1
            copied_bytes += size
        took = time.monotonic() - start
        names = ", ".join(f"{n}/" for n in OLV_STATE if (self.app_dir / n).is_dir())
        note = (f"data: your {names} copied into the working folder ({copied} files, "
                f"{copied_bytes / 2**20:.1f} MiB in {took:.1f} s; the originals are only read)")
        if left:
            note += (f"; {left} older files ({left_bytes / 2**20:.1f} MiB) left out beyond the "
                     f"{self.data_limit_bytes >> 20} MiB limit (option data_limit_mb)")
        self.notes.append(note)

    def uvicorn_options(self) -> dict[str, Any]:
        """What the server must be started with: the port the config says."""
        return {"port": self.port} if self.port else {}

    def _copy_characters(self, src: Path, dst: Path) -> None:
        import yaml

        assert self.base_url is not None
        dst.mkdir(parents=True, exist_ok=True)
        if not src.is_dir():
            return
        for path in sorted(src.rglob("*")):
            target = dst / path.relative_to(src)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if path.suffix.lower() in (".yaml", ".yml"):
                try:
                    data = yaml.safe_load(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, yaml.YAMLError):
                    data = None
                if isinstance(data, dict):
                    dump_yaml(patch_olv_config(data, self.base_url, character_only=True), target)
                    continue
            shutil.copyfile(path, target)

    def enter(self) -> None:
        """With ``cwd="session"``: make the working folder the current directory
        until :meth:`close` (the app opens ``cache/``, ``chat_history/``,
        ``model_dict.json`` ... relative to it at run time, as upstream does)."""
        if self.cwd_mode == "session" and self._saved_cwd is None and self.workdir is not None:
            self._saved_cwd = os.getcwd()
            os.chdir(self.workdir)
            # A module the app imports lazily must not leave __pycache__ in its tree.
            self._saved_bytecode = sys.dont_write_bytecode
            sys.dont_write_bytecode = True

    def build_dir(self) -> contextlib.AbstractContextManager[Any]:
        """The current directory for construction and ``initialize()``."""
        assert self.workdir is not None
        return chdir(self.workdir)

    def close(self) -> None:
        """Restore the current directory, stop the fake, remove the working folder."""
        if self.closed:
            return
        self.closed = True
        if self._saved_bytecode is not None:
            sys.dont_write_bytecode, self._saved_bytecode = self._saved_bytecode, None
        if self._saved_cwd is not None:
            saved, self._saved_cwd = self._saved_cwd, None
            try:
                here = os.getcwd()
            except FileNotFoundError:
                here = None
            if here is None or (self.workdir is not None and Path(here) == self.workdir):
                os.chdir(saved)
            else:
                logger.warning("olv profile: the current directory moved to %s during the session; left there", here)
        try:
            self.fake.stop()
        finally:
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)




def free_port() -> int:
    """A port free on 127.0.0.1 now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
