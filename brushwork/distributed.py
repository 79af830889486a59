"""The process group's environment, checked before any group is joined (light: no torch at import)."""

from __future__ import annotations

import os
import sys

from .errors import BrushworkError


def check_launch_environment(env=None, wait_notice_s: float = 15.0) -> None:
    """The variables a launcher sets, checked before any process group is joined: one line when they
    cannot form a group, and a line on stderr when joining it takes longer than ``wait_notice_s``
    (a stale WORLD_SIZE/MASTER_ADDR left in a shell otherwise waits in silence)."""
    import threading

    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return
    try:
        world, rank = int(env["WORLD_SIZE"]), int(env.get("RANK", "0"))
    except ValueError:
        raise BrushworkError(f"WORLD_SIZE={env['WORLD_SIZE']!r} / RANK={env.get('RANK')!r}: not whole numbers; "
                             "start the job with accelerate launch or torchrun, or unset them") from None
    if world < 1 or not 0 <= rank < world:
        raise BrushworkError(f"RANK={rank} with WORLD_SIZE={world}: no such rank; start the job with accelerate "
                             "launch or torchrun, or unset WORLD_SIZE and RANK")
    if world == 1:
        return
    if not env.get("MASTER_ADDR"):
        raise BrushworkError(f"WORLD_SIZE={world} is set but MASTER_ADDR is not: start the processes with accelerate "
                             "launch (or torchrun), or unset WORLD_SIZE, RANK and LOCAL_RANK to run one process")
    where = f"{env['MASTER_ADDR']}:{env.get('MASTER_PORT', '29500')}"

    def notice():
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            print(f"rank {rank}: waiting {wait_notice_s:.0f} s so far for the {world - 1} other process(es) of "
                  f"WORLD_SIZE={world} at {where}; if no others were started, WORLD_SIZE/MASTER_ADDR are left "
                  "over in this shell: unset them (Ctrl-C stops)", file=sys.stderr, flush=True)

    timer = threading.Timer(wait_notice_s, notice)
    timer.daemon = True
    timer.start()
