#!/usr/bin/env python3
"""Download and extract an original CycleGAN dataset (monet2photo, cezanne2photo, ukiyoe2photo, ...).

The zip comes from the official URL through fsspec, with a progress bar, retries, and resume of a
partial download (DEST/NAME.zip.part) where the server supports range requests. Its sha256 is
recorded in DEST/NAME.source.json and carried into the shard manifest. Without internet access,
fetch the zip elsewhere and pass --from PATH_TO_ZIP_OR_DIR.

examples:
  python data_prep/download.py monet2photo --dest data/raw
  python data_prep/download.py monet2photo --from ~/Downloads/monet2photo.zip
then: python data_prep/shard.py data/raw/monet2photo --out data/shards/monet2photo
"""

import shutil
import sys
from pathlib import Path

from tqdm import tqdm

from brushwork import cli, config, download
from brushwork.errors import BrushworkError


def main(*names, **flags):
    if len(names) > 1:
        raise BrushworkError(f"give one dataset name, got {len(names)}")
    if names:
        flags["name"] = str(names[0])
    if "from" in flags:
        flags["from_path"] = flags.pop("from")
    cfg = config.load_config(config.DownloadConfig, None, flags)
    dest = Path(cfg.dest)
    target = dest / cfg.name
    url = cfg.url or download.dataset_url(cfg.name)
    zip_path = dest / f"{cfg.name}.zip"
    if cfg.from_path:
        src = Path(cfg.from_path).expanduser()
        if not src.exists():
            raise BrushworkError(f"--from {src}: no such file or folder")
        if src.is_dir():
            if src.resolve() != target.resolve():
                shutil.copytree(src, target, dirs_exist_ok=True)
            record = download.record_source(target, cfg.name, f"file://{src.resolve()}", None)
            print(f"{cfg.name}: copied {src} to {target}")
            return 0
        zip_path, url = src, f"file://{src.resolve()}"
    elif not zip_path.exists():
        with tqdm(desc=cfg.name, unit="B", unit_scale=True, unit_divisor=1024, disable=None) as bar:
            def progress(done, total):
                bar.total = total
                bar.update(done - bar.n)

            download.fetch(url, zip_path, progress, retries=cfg.retries)
    download.extract(zip_path, target)
    record = download.record_source(target, cfg.name, url, zip_path)
    if not cfg.keep_zip and not cfg.from_path:
        zip_path.unlink()
    print(f"{cfg.name}: {target} (sha256 {record.get('sha256', '?')[:16]}..., from {url})")
    print(f"next: python data_prep/shard.py {target} --out data/shards/{cfg.name}")
    return 0


def help_text():
    return __doc__ + "\nflags:\n" + config.describe(config.DownloadConfig)


if __name__ == "__main__":
    sys.exit(cli.run(main, help_text=help_text))
