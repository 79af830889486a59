#!/usr/bin/env python3
"""Download and extract an original CycleGAN dataset (monet2photo, cezanne2photo, ukiyoe2photo, ...).

  python data_prep/download.py monet2photo --out data/raw
  python data_prep/download.py monet2photo --mirror https://mirror.example/cyclegan/datasets   # MIRROR/NAME.zip
  python data_prep/download.py monet2photo --from ~/Downloads/monet2photo.zip
  python data_prep/download.py --model style_monet        # released weights: python -m brushwork.pretrained
then: python data_prep/shard.py data/raw/monet2photo --out data/shards/monet2photo

The zip comes from the official URL through fsspec, with progress, retries, and resume of a
partial download (OUT/NAME.zip.part) where the server supports range requests. Its sha256 is
recorded in OUT/NAME.source.json and carried into the shard manifest. Without internet access,
fetch the zip elsewhere and pass --from PATH_TO_ZIP_OR_DIR.
"""

import shutil
import sys
from pathlib import Path

from brushwork import cli
from brushwork.core import presets
from brushwork.core.errors import BrushworkError
from brushwork.core.progress import Progress
from brushwork.data import download, pretrained
from brushwork.schemas.data import DownloadConfig


def byte_progress(name: str) -> tuple[Progress, callable]:
    progress = Progress(0, desc=name, unit="B", every_seconds=10)

    def report(done, total):
        progress.set_total(total or 0)
        progress.update(done - progress.done)

    return progress, report


def run(cfg: DownloadConfig) -> int:
    if cfg.model:
        w = pretrained.lookup(cfg.model, base_url=cfg.mirror)
        progress, report = byte_progress(cfg.model)
        with progress:
            path = pretrained.fetch_weights(w, report, cfg.retries, cfg.from_path)
        print(f"{cfg.model}: {path}")
        return 0
    dest = Path(cfg.out)
    target = dest / cfg.name
    zip_path = dest / f"{cfg.name}.zip"
    if cfg.from_path:
        src = Path(cfg.from_path).expanduser()
        if not src.exists():
            raise BrushworkError(f"--from {src}: no such file or folder")
        if src.is_dir():
            if src.resolve() != target.resolve():
                if target.exists() and not download.owned(target):
                    raise BrushworkError(f"{target} exists and was not made by data_prep/download.py; move it away "
                                         "or choose another --out")
                shutil.copytree(src, target, dirs_exist_ok=True)
            download.record_source(target, cfg.name, f"file://{src.resolve()}", None)
            print(f"{cfg.name}: copied {src} to {target}")
            return 0
        zip_path, url = src, f"file://{src.resolve()}"
    else:
        url = cfg.url or download.dataset_url(cfg.name, cfg.mirror)  # with --from any name will do
    if not cfg.from_path and not zip_path.exists():
        progress, report = byte_progress(cfg.name)
        with progress:
            download.fetch(url, zip_path, report, retries=cfg.retries)
        download.refuse_web_page(zip_path, url)
    download.extract(zip_path, target)
    record = download.record_source(target, cfg.name, url, zip_path)
    presets.write_resolved(cfg, dest, f"{cfg.name}.download.toml")
    if not cfg.keep_zip and not cfg.from_path:
        zip_path.unlink()
    print(f"{cfg.name}: {target} (sha256 {record.get('sha256', '?')[:16]}..., from {url})")
    print(f"next: python data_prep/shard.py {target} --out data/shards/{cfg.name}")
    return 0


COMMAND = cli.Command(DownloadConfig, run, __doc__)

if __name__ == "__main__":
    sys.exit(cli.main(COMMAND))
