"""``VADInterface``: voice activity detection over streamed microphone audio."""

from __future__ import annotations

import abc
from collections.abc import Iterator


class VADInterface(metaclass=abc.ABCMeta):
    """Turns microphone chunks into utterances."""

    @abc.abstractmethod
    def detect_speech(self, received_data: list[float]) -> Iterator[bytes]:
        """Yield each complete utterance found so far."""
        raise NotImplementedError
