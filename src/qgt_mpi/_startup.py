"""Start-up time of a command before the run's timers exist (no numpy, no MPI imported here).

``qgt_mpi.cli.main`` creates a :class:`Startup` first thing in ``main()`` and marks the end
of each start-up step (interpreter, MPI initialisation, imports, deck); the run records them
as its first phases (run/driver.py STARTUP), so the timing table and ``/timing`` show them.
"""

from __future__ import annotations

import os
import resource
import time


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far [MiB]. Local.

    Linux's VmHWM of this process image (ru_maxrss would carry over the peak of a large
    parent across fork + exec, e.g. a serial run started from a notebook); ru_maxrss where
    /proc is not available.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def process_age() -> float:
    """Seconds since this process was started (exec), from Linux /proc; 0.0 if unknown.

    Local. Resolution: the kernel's clock tick (10 ms) and /proc/uptime's 10 ms.
    """
    try:
        with open("/proc/self/stat") as fh:
            after_name = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        start = int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(uptime - start, 0.0)


class Startup:
    """Seconds of the start-up steps of this process, marked one after the other. Local.

    Created with the time since the process started as the step ``interpreter``; each
    :meth:`mark` adds the time since the previous mark to a step and records the peak
    memory (VmHWM) at its end in ``peak_mib``.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"interpreter": process_age()}
        self.peak_mib: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, name: str) -> None:
        """Add the time since the previous mark (or creation) to step ``name``. Local."""
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self.peak_mib[name] = peak_rss_mib()
        self._last = now
