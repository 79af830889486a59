"""The process group: its environment checked before any group is joined (light: no torch at import), whether
the work of this process has started, and the group's teardown before exit."""

from __future__ import annotations

import os

from brushwork.core.errors import BrushworkError

_work_started = False  # set once a command's work begins: errors from then on are rank-specific
_group_ended = False    # set by end_process_group: this process's process group is gone


def world_size() -> int:
    """WORLD_SIZE from the launcher; 1 when unset or not a number."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def process_rank() -> int:
    """This process's rank; 0 when RANK is unset or cannot be one (so that process still speaks)."""
    try:
        r = int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0
    return r if 0 <= r < world_size() else 0


def work_started() -> None:
    """From here on errors are rank-specific: every rank prints its own (set-up errors: rank 0 only)."""
    global _work_started
    _work_started = True


def has_started() -> bool:
    return _work_started


def end_process_group() -> None:
    """Wait for every rank, then tear the process group down before exit (else gloo can abort at exit)."""
    import torch.distributed as dist

    global _group_ended
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        _group_ended = True


def group_ended() -> bool:
    return _group_ended


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
            from brushwork.core.log import warn

            warn(f"rank {rank}: waiting {wait_notice_s:.0f} s so far for the {world - 1} other process(es) of "
                 f"WORLD_SIZE={world} at {where}; if no others were started, WORLD_SIZE/MASTER_ADDR are left "
                 "over in this shell: unset them (Ctrl-C stops)")

    timer = threading.Timer(wait_notice_s, notice)
    timer.daemon = True
    timer.start()
