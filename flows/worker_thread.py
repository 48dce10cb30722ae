"""Keep a bytewax worker thread's Python thread state alive for the thread's lifetime.

With more than one worker (threads or processes), bytewax runs each worker on a thread
that timely started, not Python. Around each step it takes the GIL with
PyGILState_Ensure and gives it back with PyGILState_Release, and when that release
brings the thread's count to zero CPython deletes the thread's state. Two things broke:

* everything `threading.local` holds went with it: a 2-process flow reloaded its
  recogniser (two model sessions, ~1 s) every few seconds, 18 times in a 48-pass
  benchmark run instead of twice;
* OpenVINO's bindings crashed in the deletion (SIGSEGV in tstate_delete_common): every
  process of a 2-process flow died within its first frames.

One PyGILState_Ensure that is never released keeps the count above zero, so the thread
keeps one state (and its locals) from its first step on. The GIL is still handed back
after every step: bytewax's own release does that.
"""

from __future__ import annotations

import ctypes
import threading

__all__ = ["keep_thread_state"]

_kept = threading.local()  # survives once kept: that is the point

_ensure = ctypes.pythonapi.PyGILState_Ensure
_ensure.restype = ctypes.c_int
_ensure.argtypes = ()


def keep_thread_state() -> None:
    """Make the calling thread's Python thread state permanent (once per thread; later
    calls do nothing). Harmless on a thread Python started, whose state lives anyway."""
    if getattr(_kept, "done", False):
        return
    _ensure()  # never released, on purpose (see the module docstring)
    _kept.done = True
