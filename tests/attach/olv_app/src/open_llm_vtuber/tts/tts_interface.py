"""``TTSInterface``: what every text-to-speech engine provides."""

from __future__ import annotations

import abc
import asyncio
import logging
import os

logger = logging.getLogger(__name__)


class TTSInterface(metaclass=abc.ABCMeta):
    """A text-to-speech engine writing audio files into ``cache/``."""

    async def async_generate_audio(self, text: str, file_name_no_ext: str | None = None) -> str | None:
        """:meth:`generate_audio` off the event loop (a thread, by default)."""
        return await asyncio.to_thread(self.generate_audio, text, file_name_no_ext)

    @abc.abstractmethod
    def generate_audio(self, text: str, file_name_no_ext: str | None = None) -> str | None:
        """Speak ``text`` into a file.

        Returns:
            The file's path, or ``None`` when the engine failed.
        """
        raise NotImplementedError

    @staticmethod
    def generate_cache_file_name(file_name_no_ext: str | None = None, file_extension: str = "wav") -> str:
        """A path in ``cache/`` (relative to the current directory, as upstream)."""
        cache_dir = "cache"
        if not os.path.exists(cache_dir):
            os.makedirs(cache_dir)
        return os.path.join(cache_dir, f"{file_name_no_ext or 'temp'}.{file_extension}")

    @staticmethod
    def remove_file(filepath: str, verbose: bool = True) -> None:
        """Delete a generated file (missing is fine)."""
        if not os.path.exists(filepath):
            if verbose:
                logger.warning("File %s does not exist", filepath)
            return
        os.remove(filepath)
