"""Progress of long work that a person can read, in a terminal and in a log file.

On a terminal, a tqdm bar, with every other line printed above it (``write``). When stdout is a
file or a pipe (every SLURM job), plain lines instead, e.g.::

    images 1200/240000 (epoch 1.12/200, step 1200) | G 3.21 D 0.48 | lr 2.0e-04 | 1.9 img/s | ETA 3d 04h
    shard 320/1072 img (30 %) | 41.5 img/s | ETA 18s

One job has one progress stream: only the process that owns it (rank 0) creates an enabled one.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def duration(seconds: float) -> str:
    """A short human duration: 45s, 4m 10s, 2h 05m, 3d 04h."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB', 12_345_678 -> '11.8 MiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def print_line(text: str, file: TextIO | None = None) -> None:
    """One line to ``file`` (stderr by default): above a progress bar on the terminal, never glued onto it.

    For lines any process may print while rank 0 draws its bar (a failed pair, a warning, a rank's
    summary). One write per line, so lines of ranks sharing a terminal or log file never interleave.
    """
    file = file or sys.stderr
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is not None and getattr(tqdm_module.tqdm, "_instances", None):
        tqdm_module.tqdm.write(text, file=file)  # clears the bars, writes, redraws them
    else:
        file.write(text + "\n")
    file.flush()


class Progress:
    """Counts work done out of ``total``; draws a bar on a terminal, else prints a line now and then.

    ``update`` adds work and, in line mode, prints a line when ``every_seconds`` have passed (and
    when the work is complete; ``every_seconds=None``: never by itself); ``line`` prints one right
    away with the caller's fields (training prints one every ``log_every`` steps). The rate and ETA
    count only the work done in this process, so a resumed job estimates from its own speed.
    """

    def __init__(self, total: int, *, desc: str, unit: str, initial: int = 0, enabled: bool = True,
                 every_seconds: float | None = 30.0, stream: TextIO | None = None, terminal: bool | None = None):
        self.total, self.done, self.desc, self.unit = total, initial, desc, unit
        self.enabled, self.every_seconds = enabled, every_seconds
        self.stream = stream or sys.stdout
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.start_count, self.start_time = initial, time.perf_counter()
        self.last_line, self.last_line_done = self.start_time, None
        self.fields = ""
        self.bar = None
        if enabled and self.terminal:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True,
                            unit_scale=unit == "B", unit_divisor=1024 if unit == "B" else 1000)

    # -- counting ------------------------------------------------------------------------------

    def update(self, n: int = 1, fields: str = "") -> None:
        self.done += n
        if fields:
            self.fields = fields
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            if fields:
                self.bar.set_postfix_str(fields, refresh=False)
        elif self.every_seconds is not None and (
                time.perf_counter() - self.last_line >= self.every_seconds
                or (self.total and self.done >= self.total and self.last_line_done != self.done)):
            self.line(self.fields)

    def set_total(self, total: int) -> None:
        """The total, once known (a download learns it from the server)."""
        if total != self.total:
            self.total = total
            if self.bar is not None:
                self.bar.total = total
                self.bar.refresh()

    def skip(self, n: int) -> None:
        """Work found already done (a rerun): counted as done, but not in the rate."""
        self.done += n
        self.start_count += n
        if self.bar is not None:
            self.bar.update(n)

    def rate(self) -> float:
        """Units per second in this process so far."""
        elapsed = time.perf_counter() - self.start_time
        return (self.done - self.start_count) / elapsed if elapsed > 0 else 0.0

    def eta(self) -> str:
        rate = self.rate()
        if self.total and self.done >= self.total:
            return "done"
        if not self.total:
            return "?"
        return duration((self.total - self.done) / rate) if rate > 0 else "?"

    # -- printing ------------------------------------------------------------------------------

    def status(self, fields: str = "", position: str = "") -> str:
        """``desc done/total unit (pct) | fields | rate | ETA``; with ``position`` the caller gives the head and
        rate."""
        if position:
            return " | ".join([position] + ([fields] if fields else []) + [f"ETA {self.eta()}"])
        pct = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        if self.unit == "B":  # bytes in human units: 1.2/540.3 MiB at 8.4 MiB/s
            total = human_bytes(self.total) if self.total else "?"
            head, rate = f"{self.desc} {human_bytes(self.done)}/{total}", f"{human_bytes(self.rate())}/s"
        else:
            head, rate = f"{self.desc} {self.done}/{self.total} {self.unit}", f"{self.rate():.1f} {self.unit}/s"
        parts = [head + pct] + ([fields] if fields else [])
        return " | ".join(parts + [rate, f"ETA {self.eta()}"])

    def line(self, fields: str = "", position: str = "") -> None:
        """One status line now (a bar postfix on a terminal)."""
        if not self.enabled:
            return
        self.last_line, self.last_line_done = time.perf_counter(), self.done
        if self.bar is not None:
            self.bar.set_postfix_str(fields)
            return
        self.write(self.status(fields, position))

    def write(self, text: str) -> None:
        """A line above the bar (or just a line): checkpoint notices, warnings, results."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
