"""Progress a person can read: plain lines with done/total, rate and ETA in a log file; on a terminal one
bar, with every other line (notices, failed items, warnings) printed above it, not glued onto it."""

import io
import re
import sys
import warnings
from dataclasses import dataclass

from brushwork import cli
from brushwork.core.progress import Progress, duration, print_line
from brushwork.schemas.fields import Config, setting


def above_the_bar(text: str, line: str) -> bool:
    """``line`` starts a line of its own in a terminal stream (the bar was cleared before it)."""
    start = text.index(line)
    return start == 0 or text[start - 1] in "\r\n"


def test_durations_read_like_a_person_writes_them():
    assert [duration(s) for s in (0, 45, 250, 7500, 3 * 86400 + 4 * 3600 + 59)] == [
        "0s", "45s", "4m 10s", "2h 05m", "3d 04h"]


def test_in_a_log_file_progress_is_plain_lines_with_rate_and_eta():
    stream = io.StringIO()
    with Progress(4, desc="shard", unit="img", stream=stream, every_seconds=0) as progress:
        for _ in range(4):
            progress.update(1)
        progress.write("checkpoint: somewhere")
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert re.fullmatch(r"shard 1/4 img \(25 %\) \| [\d.]+ img/s \| ETA \S+", lines[0]), lines
    assert lines[3].startswith("shard 4/4 img (100 %)") and lines[3].endswith("ETA done")
    assert lines[4] == "checkpoint: somewhere"


def test_a_disabled_progress_prints_nothing():  # every rank but the main one
    stream = io.StringIO()
    with Progress(4, desc="gatys", unit="pair", stream=stream, enabled=False, every_seconds=0) as progress:
        progress.update(4)
        progress.line("loss 1.0")
        progress.write("checkpoint: x")
    assert stream.getvalue() == ""


def test_on_a_terminal_notices_go_above_the_bar():
    stream = io.StringIO()
    with Progress(4, desc="step", unit="step", stream=stream, terminal=True) as progress:
        progress.update(1, "G 3.2 D 0.5")
        progress.write("checkpoint: runs/x/checkpoints/step_00000001")
        progress.update(3)
    text = stream.getvalue()
    assert above_the_bar(text, "checkpoint: runs/x"), repr(text)
    assert re.search(r"step: 100%\|[^\r\n]*\| 4/4 ", text), repr(text)


def test_lines_from_elsewhere_go_above_the_bar_too(capsys):
    # a failed pair (any rank) and a warning raised mid-run, while the main rank draws its bar on the terminal
    @dataclass(frozen=True)
    class WorkConfig(Config):
        """a command that warns while it draws a bar"""

        n: int = setting(3, "items", min=1)

    def work(cfg):
        with Progress(cfg.n, desc="work", unit="it", stream=sys.stderr, terminal=True) as progress:
            progress.update(1)
            print_line("failed: pair_1: the loss became NaN")
            warnings.warn("something looks odd")
            progress.update(cfg.n - 1)
        return 0

    with warnings.catch_warnings():
        assert cli.main(cli.Command(WorkConfig, work, "work"), []) == 0
    err = capsys.readouterr().err
    assert above_the_bar(err, "failed: pair_1: the loss became NaN"), repr(err)
    assert above_the_bar(err, "warning: something looks odd"), repr(err)
    assert err.count("warning: something looks odd") == 1


def test_print_line_without_a_bar_is_a_plain_line():
    stream = io.StringIO()
    print_line("failed: x: y", stream)
    assert stream.getvalue() == "failed: x: y\n"
