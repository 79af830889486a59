"""Every kind of image file either converts correctly or fails with a clear ImageError."""

import io

import numpy as np
import pytest
from PIL import Image

from brushwork.core.errors import ImageError
from brushwork.data.images import decode_image, find_images, load_image, save_image


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def pixels(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)


def test_plain_rgb_jpeg_is_stored_as_is(tmp_path):
    rgb = Image.new("RGB", (32, 16), (10, 200, 30))
    img, info = decode_image(encode(rgb, "JPEG", quality=95), "plain.jpg")
    assert (info.format, info.mode, info.width, info.height, info.converted) == ("JPEG", "RGB", 32, 16, False)
    assert info.extension == "jpg"
    assert np.abs(pixels(img) - [10, 200, 30]).max() <= 3


def test_zero_byte_file(tmp_path):
    path = write(tmp_path, "empty.jpg", b"")
    with pytest.raises(ImageError, match=r"empty.jpg: empty file \(0 bytes\)"):
        load_image(path)


def test_truncated_jpeg(tmp_path):
    data = encode(Image.effect_noise((128, 128), 64).convert("RGB"), "JPEG", quality=90)
    path = write(tmp_path, "cut.jpg", data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut.jpg: truncated or corrupt"):
        load_image(path)


def test_text_file_named_jpg(tmp_path):
    path = write(tmp_path, "notes.jpg", b"these are not pixels\n" * 10)
    with pytest.raises(ImageError, match=r"notes.jpg: not an image"):
        load_image(path)


def test_png_named_jpg_is_sniffed_by_content(tmp_path):
    path = write(tmp_path, "actually_png.jpg", encode(Image.new("RGB", (8, 8), (1, 2, 3)), "PNG"))
    img, info = decode_image(path.read_bytes(), str(path))
    assert info.format == "PNG" and info.extension == "png"
    assert (pixels(img) == [1, 2, 3]).all()


def test_cmyk_jpeg_converts_to_rgb(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    img, info = decode_image(encode(cmyk, "JPEG", quality=95), "cmyk.jpg")
    assert info.mode == "CMYK" and info.converted and info.extension is None
    assert np.abs(pixels(img) - [255, 0, 0]).max() <= 4


def test_16bit_png_scales_to_8bit(tmp_path):
    arr = np.array([[0, 32896, 65535, 257 * 10]], dtype=np.uint16)
    img16 = Image.fromarray(arr)  # Pillow picks I;16 for uint16
    img, info = decode_image(encode(img16, "PNG"), "deep.png")
    assert info.mode in ("I;16", "I") and info.converted
    assert pixels(img)[0, :, 0].tolist() == [0, 128, 255, 10]
    assert (pixels(img)[..., 0] == pixels(img)[..., 2]).all()  # grey stays grey


def test_rgba_png_composites_on_white(tmp_path):
    rgba = Image.new("RGBA", (3, 1))
    rgba.putdata([(255, 0, 0, 0), (0, 0, 255, 255), (0, 0, 0, 128)])
    img, info = decode_image(encode(rgba, "PNG"), "alpha.png")
    assert info.mode == "RGBA" and info.converted
    got = pixels(img)[0]
    assert got[0].tolist() == [255, 255, 255]  # fully transparent -> white
    assert got[1].tolist() == [0, 0, 255]      # opaque kept
    assert np.abs(got[2] - 127).max() <= 1     # half black over white -> mid grey


def test_greyscale_with_alpha(tmp_path):
    la = Image.new("LA", (2, 2), (0, 0))
    img, _ = decode_image(encode(la, "PNG"), "la.png")
    assert (pixels(img) == 255).all()


def test_palette_gif_and_first_frame_of_animation(tmp_path):
    frames = [Image.new("P", (8, 8), 0) for _ in range(2)]
    palette = [255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6)
    for i, f in enumerate(frames):
        f.putpalette(palette)
        f.paste(i, (0, 0, 8, 8))
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    img, info = decode_image(data, "anim.gif")
    assert info.format == "GIF" and info.frames == 2 and info.converted
    assert (pixels(img) == [255, 0, 0]).all()  # the first frame (red), not the second (green)


def test_exif_orientation_is_applied(tmp_path):
    src = Image.new("RGB", (40, 20), (0, 0, 255))
    src.paste((255, 0, 0), (0, 0, 20, 20))      # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6                             # "rotate 90 CW to display"
    img, info = decode_image(encode(src, "JPEG", quality=95, exif=exif), "rotated.jpg")
    assert (img.width, img.height) == (20, 40) and (info.width, info.height) == (20, 40)
    assert info.converted
    top, bottom = pixels(img)[5, 10], pixels(img)[35, 10]
    assert top[0] > 200 and top[2] < 50          # what was left is now on top
    assert bottom[2] > 200 and bottom[0] < 50


def test_over_pixel_cap(tmp_path):
    path = write(tmp_path, "huge.png", encode(Image.new("RGB", (300, 200)), "PNG"))
    with pytest.raises(ImageError, match=r"huge.png: 300x200 is 60,000 pixels, over the cap of 50,000"):
        load_image(path, max_pixels=50_000)
    assert load_image(path, max_pixels=60_000).size == (300, 200)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_find_images_recursive_any_case(tmp_path):
    for name in ["a/x.JPG", "a/b/y.png", "z.Jpeg", "notes.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)] == ["a/b/y.png", "a/x.JPG", "z.Jpeg"]
    with pytest.raises(ImageError, match="no such file or folder"):
        find_images(tmp_path / "missing")


def test_save_image_is_atomic(tmp_path):
    path = tmp_path / "out.png"
    save_image(Image.new("RGB", (4, 4), (9, 9, 9)), path)
    before = path.read_bytes()

    class Exploding:
        mode, size = "RGB", (4, 4)

        def save(self, f, **kw):
            f.write(b"partial")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_image(Exploding(), path)
    assert path.read_bytes() == before                # old file intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp left behind
    with pytest.raises(ImageError, match="unknown image extension"):
        save_image(Image.new("RGB", (1, 1)), tmp_path / "out.xyz")


def test_the_pixel_cap_is_ours_alone_and_its_advice_works():
    """Pillow's own bomb limit (2 x 89M pixels) must not refuse what --max_pixels allows."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # a PNG claiming 15000 x 15000 (225M pixels) with almost no pixel data behind it
    header = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 15000, 15000, 8, 2, 0, 0, 0))
              + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    with pytest.raises(ImageError, match=r"15000x15000 is 225,000,000 pixels, over the cap of 80,000,000; if you "
                                         r"trust this file, rerun with --max_pixels 225000000 or more"):
        decode_image(header, "huge.png")
    with pytest.raises(ImageError, match=r"huge.png: truncated or corrupt"):  # past our cap: decoded, no bomb error
        decode_image(header, "huge.png", max_pixels=225_000_000)

