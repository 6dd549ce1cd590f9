"""Background priority for the threads that do jobs' work, so an editor's window keeps the CPU it needs."""

from __future__ import annotations

import os
import threading

__all__ = ["background_priority", "BACKGROUND_NICE"]

BACKGROUND_NICE = 10


def background_priority() -> None:
    """Lower the calling thread's priority (and that of the decoder threads it starts) where the OS allows it per
    thread (Linux); elsewhere nothing changes."""
    if not hasattr(os, "setpriority") or os.name != "posix" or os.uname().sysname != "Linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except OSError:
        pass
