"""What made each output of an eval folder: the settings that shaped it and its input's fingerprint.

translate and stylize append one line per finished output to ``OUT/.brushwork/{tool}.rank{R}.jsonl``
(a rank's own file: no two processes append to one file); the settings themselves are stored
once, by hash, in ``{tool}.settings.json``. A rerun compares every output already in the folder
with what this run would write: the same settings and the same input (size and mtime, or the shard
sample) mean done; anything else (other settings or weights, an input that changed, or a file the
tool did not write) is refused with what changed, and ``--overwrite`` re-renders. So a folder never
holds images its config does not describe, and nothing the user put there is replaced unasked.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from brushwork.core.errors import BrushworkError
from brushwork.core.fileio import atomic_write_text

FOLDER = ".brushwork"


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def network_fingerprint(*nets) -> str:
    """sha256 of the networks' weights: the same weights however their file or run dir is spelled."""
    h = hashlib.sha256()
    for net in nets:
        for key, value in sorted(net.state_dict().items()):
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def input_fingerprint(item) -> str:
    """A file's size and mtime, or a shard sample's place and byte length: changes when its content may have."""
    if item.shard is not None:
        shard, index = item.shard
        return f"{shard.url}#{index}:{shard.span(index, index + 1)}"
    try:
        st = os.stat(item.path)
    except OSError:
        return "unreadable"
    return f"{st.st_size}:{st.st_mtime_ns}"


class Ledger:
    def __init__(self, out: str | os.PathLike, tool: str, settings: dict, rank: int = 0):
        self.root = Path(out) / FOLDER
        self.tool, self.settings, self.rank = tool, settings, rank
        self.hash = settings_hash(settings)

    def recorded(self) -> tuple[dict[str, tuple[str, str]], dict[str, dict]]:
        """({output name: (settings hash, input fingerprint)}, {settings hash: settings}) of every rank's lines."""
        outputs: dict[str, tuple[str, str]] = {}
        for path in sorted(self.root.glob(f"{self.tool}.rank*.jsonl")):
            for line in path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    outputs[entry["name"]] = (entry["settings"], entry["input"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a kill: that output is simply not recorded
        try:
            known = json.loads((self.root / f"{self.tool}.settings.json").read_text())
        except (OSError, ValueError):
            known = {}
        return outputs, known if isinstance(known, dict) else {}

    def changed(self, existing: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(output name, what differs) for each existing output (name, this run's input fingerprint) that
        this run would not write as it is."""
        outputs, known = self.recorded()
        found = []
        for name, fingerprint in existing:
            if name not in outputs:
                found.append((name, f"not written by {self.tool} (or by an earlier version)"))
                continue
            old_hash, old_input = outputs[name]
            if old_hash != self.hash:
                old = known.get(old_hash, {})
                diffs = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in self.settings.items() if old.get(k) != v]
                found.append((name, ", ".join(diffs) if diffs else "other settings"))
            elif old_input != fingerprint:
                found.append((name, "its input changed since"))
        return found

    def start(self) -> None:
        """Record this run's settings (rank 0; every rank's lines refer to them by hash)."""
        path = self.root / f"{self.tool}.settings.json"
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        if not isinstance(known, dict):
            known = {}
        if self.hash not in known:
            known[self.hash] = self.settings
            atomic_write_text(path, json.dumps(known, indent=1, sort_keys=True, default=str) + "\n")

    def add(self, name: str, fingerprint: str) -> None:
        """Record one finished output (one appended line, written after the image)."""
        self.root.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"name": name, "settings": self.hash, "input": fingerprint}) + "\n"
        with open(self.root / f"{self.tool}.rank{self.rank}.jsonl", "a", encoding="utf-8") as f:
            f.write(line)


def refuse_changes(out, changed: list[tuple[str, str]]) -> None:
    if changed:
        name, why = changed[0]
        raise BrushworkError(f"{out} holds {len(changed)} output(s) this run would not write as they are (e.g. "
                             f"{name}: {why}); --overwrite re-renders them, or choose another --out")
