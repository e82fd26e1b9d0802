"""Look at a report as a person would: headless Chromium renders it to a PNG.

Used by the tests (is the verdict table there, are the pictures drawn?) and
to make the README's picture. Chromium is optional: :func:`find_chromium`
says whether it is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .._platform import kill_tree, new_group_kwargs

__all__ = ["CHROMIUM_CANDIDATES", "dump_dom", "find_chromium", "screenshot"]

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The first Chromium found (Debian's ``/usr/bin/chromium`` first), or ``None``."""
    for name in CHROMIUM_CANDIDATES:
        path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if path:
            return path
    return None


def screenshot(
    page: Path | str,
    png: Path | str,
    *,
    width: int = 1280,
    height: int = 2400,
    chromium: str | None = None,
    timeout: float = 120,
    fragment: str = "",
) -> Path:
    """Render ``page`` (a local HTML file) to ``png``, offline.

    Args:
        page: the HTML file.
        png: where the screenshot goes.
        width: window width, px.
        height: window height, px (what is captured).
        chromium: the browser binary (default :func:`find_chromium`).
        timeout: seconds; the browser's process group is killed after it.
        fragment: a URL fragment (``"page-3"``: the walkthrough at page 3).

    Raises:
        FileNotFoundError: no Chromium.
        RuntimeError: the browser failed or wrote no PNG.
    """
    png = Path(png).resolve()
    png.unlink(missing_ok=True)
    _, err, code = _run(page, [f"--screenshot={png}", "--virtual-time-budget=2000"], width, height, chromium, timeout,
                        fragment=fragment)
    if not png.exists() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot (exit {code}): {err[-2000:]}")
    return png


def dump_dom(page: Path | str, *, width: int = 1400, height: int = 900, fragment: str = "",
             chromium: str | None = None, timeout: float = 120) -> str:
    """The page's DOM after its scripts ran, as Chromium serialises it (what
    a test reads to check the walkthrough's state or a measured layout).

    Args:
        page: the HTML file.
        width, height: the window, px (the layout the scripts see).
        fragment: a URL fragment (``"page-2"``).
    """
    out, err, code = _run(page, ["--dump-dom", "--virtual-time-budget=3000"], width, height, chromium, timeout,
                          fragment=fragment)
    if code != 0 or not out.strip():
        raise RuntimeError(f"chromium dumped no DOM (exit {code}): {err[-2000:]}")
    return out


def _run(page: Path | str, args: list[str], width: int, height: int, chromium: str | None, timeout: float,
         *, fragment: str = "") -> tuple[str, str, int | None]:
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium)")
    url = Path(page).resolve().as_uri() + (f"#{fragment}" if fragment else "")
    with tempfile.TemporaryDirectory(prefix="leaklab-chromium-") as profile:
        cmd = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}", *args,
            f"--window-size={width},{height}", url,
        ]
        # Its own process group: on a timeout the renderer and zygote
        # processes go with the browser.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **new_group_kwargs())
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            proc.communicate()
            raise RuntimeError(f"chromium did not finish in {timeout:.0f} s") from None
        finally:
            # Helpers that outlive the browser (rare) must not outlive the call.
            kill_tree(proc)
    return out.decode(errors="replace"), err.decode(errors="replace"), proc.returncode
