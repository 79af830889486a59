"""The library's one channel for messages: ``logging``, with a filter that lets rank 0 speak for the job.

``say(line)`` is a result or a notice (stdout, rank 0 only); ``say(line, every_rank=True)`` is about this
process (its share of the work); warnings go to stderr. Lines go through ``progress.print_line``, so they
land above a progress bar, one write per line (ranks sharing a log file never interleave). Progress
bars and lines keep their own stream (``progress.Progress``).
"""

from __future__ import annotations

import logging
import sys

from brushwork.core.distributed import process_rank
from brushwork.core.progress import print_line

LOGGER = "brushwork"


class _RankFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "every_rank", False) or record.levelno >= logging.WARNING or process_rank() == 0


class _LineHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        print_line(self.format(record), stream)


def logger() -> logging.Logger:
    log = logging.getLogger(LOGGER)
    if not log.handlers:
        handler = _LineHandler()
        handler.addFilter(_RankFilter())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def say(message: str, every_rank: bool = False) -> None:
    logger().info(message, extra={"every_rank": every_rank})


def warn(message: str) -> None:
    logger().warning(message)
