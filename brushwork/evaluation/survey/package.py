"""The survey package: a folder you can zip and send, and its answer key beside it.

The folder holds ``index.html`` (the page of ``page.html``: inline CSS/JS, works offline from
file://) and ``images/{id}.jpg``. Every image is centre-cropped and resized to one size, re-encoded
with one JPEG setting and no metadata, named by a random id, and padded after its end marker to one
common byte length, so nothing but the pixels tells real from generated. The answer key is written
beside the folder, never inside it. Fakes can come from any method (CycleGAN translations, Gatys
renders, fast-style outputs).
"""

from __future__ import annotations

import html
import io
import json
import random
import string
import zipfile
from pathlib import Path

from PIL import Image

from brushwork.core.errors import BrushworkError, ImageError
from brushwork.core.fileio import atomic_write_bytes, atomic_write_text
from brushwork.data.images import find_images, fit, load_image

PAD_BLOCK = 4096


def answers_dir(package: Path) -> Path:
    """``survey/`` → ``survey_answers/`` beside it: the key and the build settings, in one place, never sent."""
    return package.parent / f"{package.name}_answers"


def key_path(package: Path) -> Path:
    """``survey/`` → ``survey_answers/key.json``."""
    return answers_dir(package) / "key.json"


def square(img: Image.Image, size: int) -> Image.Image:
    return fit(img, (size, size))


def encode_uniform(img: Image.Image, quality: int) -> bytes:
    """Baseline JPEG, 4:2:0, no EXIF/ICC/comments: the same encoder path for every image."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality, subsampling=2, optimize=False,
                            progressive=False, exif=b"", icc_profile=None)
    return buf.getvalue()


def pick(paths: list[Path], n: int, rng: random.Random, what: str) -> list[Path]:
    if len(paths) < n:
        raise BrushworkError(f"{what}: {len(paths)} image(s), but the survey needs {n}; lower --n")
    return sorted(rng.sample(paths, n))


def build(fakes: str, reals: str, out: str, n: int = 10, size: int = 256, quality: int = 90, seed: int = 0,
          title: str = "Real or generated?", make_zip: bool = False) -> dict:
    """Write the package folder (and zip) and its key; returns the key."""
    if Path(fakes).resolve() == Path(reals).resolve():
        raise BrushworkError(f"--fakes and --reals are the same folder ({fakes}): the key would call one photo both "
                             "generated and real; give the generated images and the real ones apart")
    rng = random.Random(seed)
    out_dir = Path(out).resolve()  # "." or "x/.." name no folder: the key must land beside it, not inside
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BrushworkError(f"{out_dir} is not empty; choose a new --out (a survey must not be rebuilt in place)")
    chosen = [(p, "fake") for p in pick(find_images(fakes), n, rng, f"--fakes {fakes}")] + \
             [(p, "real") for p in pick(find_images(reals), n, rng, f"--reals {reals}")]
    rng.shuffle(chosen)
    survey_id = f"{rng.getrandbits(64):016x}"
    encoded, key_images = [], {}
    for path, truth in chosen:
        try:
            original = load_image(path)
        except ImageError as e:
            raise BrushworkError(f"{e}; remove it or choose another folder") from None
        if min(original.size) < size // 2:  # upscaled more than 2x it would look generated whatever it is
            raise BrushworkError(f"{path}: {original.width}x{original.height} is too small for {size}-px survey "
                                 f"images (the shorter side needs at least {size // 2} px); remove it, or lower --size")
        img = square(original, size)
        image_id = f"{rng.getrandbits(48):012x}"
        encoded.append((image_id, encode_uniform(img, quality)))
        key_images[image_id] = {"truth": truth, "source": str(path)}
    # one byte length for all: trailing zeros after the JPEG end marker are ignored by decoders
    length = -(-max(len(d) for _, d in encoded) // PAD_BLOCK) * PAD_BLOCK
    for image_id, data in encoded:
        atomic_write_bytes(out_dir / "images" / f"{image_id}.jpg", data + b"\0" * (length - len(data)))
    order = [image_id for image_id, _ in encoded]
    atomic_write_text(out_dir / "index.html", page(survey_id, order, title, size))
    key = {"survey": survey_id, "order": order, "images": key_images, "size": size, "quality": quality, "seed": seed}
    atomic_write_text(key_path(out_dir), json.dumps(key, indent=1) + "\n")
    if make_zip:
        write_zip(out_dir)
    return key


def write_zip(folder: Path) -> Path:
    """``survey.zip`` beside the folder; members in sorted order with fixed timestamps."""
    target = folder.parent / f"{folder.name}.zip"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                info = zipfile.ZipInfo(f"{folder.name}/{p.relative_to(folder).as_posix()}", (2000, 1, 1, 0, 0, 0))
                zf.writestr(info, p.read_bytes())
    atomic_write_bytes(target, buf.getvalue())
    return target


def page(survey_id: str, order: list[str], title: str, size: int) -> str:
    """The survey page: page.html with the images (shown at their own size: none is scaled by the browser), the
    id and the order filled in (all escaped)."""
    items = "\n".join(
        f'<figure><img src="images/{i}.jpg" alt="image {n}" width="{size}" height="{size}">'
        f'<figcaption>{n}. <label><input type="radio" name="{i}" value="real"> Real</label> '
        f'<label><input type="radio" name="{i}" value="fake"> Fake</label></figcaption></figure>'
        for n, i in enumerate(order, 1))
    template = string.Template((Path(__file__).parent / "page.html").read_text())
    return template.substitute(title=html.escape(title), items=items, survey_id=survey_id, order=json.dumps(order))
