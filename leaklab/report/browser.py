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

__all__ = ["CHROMIUM_CANDIDATES", "find_chromium", "screenshot"]

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
) -> Path:
    """Render ``page`` (a local HTML file) to ``png``, offline.

    Args:
        page: the HTML file.
        png: where the screenshot goes.
        width: window width, px.
        height: window height, px (what is captured).
        chromium: the browser binary (default :func:`find_chromium`).
        timeout: seconds; the browser's process group is killed after it.

    Raises:
        FileNotFoundError: no Chromium.
        RuntimeError: the browser failed or wrote no PNG.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium)")
    png = Path(png).resolve()
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="leaklab-chromium-") as profile:
        cmd = [
            binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
            f"--window-size={width},{height}", Path(page).resolve().as_uri(),
        ]
        # Its own process group: on a timeout the renderer and zygote
        # processes go with the browser.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **new_group_kwargs())
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            proc.communicate()
            raise RuntimeError(f"chromium did not finish in {timeout:.0f} s") from None
        finally:
            # Helpers that outlive the browser (rare) must not outlive the call.
            kill_tree(proc)
    if not png.exists() or png.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no screenshot (exit {proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return png
