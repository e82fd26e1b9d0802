"""The reference backend: an offline Open-LLM-VTuber-style server.

It knows nothing of leaklab: it is the system under test. Causes C1–C9 of
the users' checklist are switchable faults (``create_app(faults=...)``); a
fault that is off means the correct implementation.
"""

from .faults import (
    ALL_FAULTS,
    FAULTS,
    BackendOptions,
    UnknownFaultError,
    UnknownOptionError,
    parse_faults,
    parse_option_pairs,
)
from .server import create_app

__all__ = [
    "ALL_FAULTS",
    "FAULTS",
    "BackendOptions",
    "UnknownFaultError",
    "UnknownOptionError",
    "create_app",
    "parse_faults",
    "parse_option_pairs",
]
