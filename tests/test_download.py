"""data_prep/download.py against a local HTTP server: download, resume, checksum, extraction, failures."""

import http.server
import json
import re
import shutil
import socket
import threading
import zipfile
from pathlib import Path

import pytest
from conftest import assert_one_error_line, make_synth, run_script

from brushwork.data.shards import file_sha256


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with Range support; records how many body bytes it sent."""

    sent = 0
    ranges = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        match = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match and type(self).ranges:
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            body = data[start:end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes" if type(self).ranges else "none")
        self.end_headers()
        self.wfile.write(body)
        type(self).sent += len(body)

    def do_HEAD(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.end_headers()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "www"
    src = make_synth(tmp_path / "src", 3, n_test=1)
    served.mkdir()
    with zipfile.ZipFile(served / "tiny2photo.zip", "w") as zf:
        for p in sorted(src.rglob("*.png")):
            zf.write(p, f"tiny2photo/{p.relative_to(src).as_posix()}")
    handler = type("Handler", (RangeHandler,), {"sent": 0, "ranges": True})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            lambda *a, **k: handler(*a, directory=str(served), **k))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served / "tiny2photo.zip", handler
    httpd.shutdown()


def test_download_extract_and_record_checksum(tmp_path, server):
    base, zpath, _ = server
    dest = tmp_path / "raw"
    proc = run_script("data_prep/download.py", "monet2photo", "--out", dest, "--url", f"{base}/tiny2photo.zip")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (dest / "monet2photo").iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert (dest / "monet2photo.zip").read_bytes() == zpath.read_bytes()
    record = json.loads((dest / "monet2photo.source.json").read_text())
    assert record["sha256"] == file_sha256(zpath) and record["url"].endswith("tiny2photo.zip")
    # the checksum travels into the shard manifest
    assert run_script("data_prep/shard.py", dest / "monet2photo", "--out", tmp_path / "shards").returncode == 0
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert manifest["source"]["sha256"] == record["sha256"] and manifest["source"]["url"] == record["url"]


def test_partial_download_resumes_with_range_requests(tmp_path, server):
    base, zpath, handler = server
    dest = tmp_path / "raw"
    dest.mkdir()
    data = zpath.read_bytes()
    (dest / "monet2photo.zip.part").write_bytes(data[: len(data) // 2])
    proc = run_script("data_prep/download.py", "monet2photo", "--out", dest, "--url", f"{base}/tiny2photo.zip")
    assert proc.returncode == 0, proc.stderr
    assert (dest / "monet2photo.zip").read_bytes() == data
    assert handler.sent == len(data) - len(data) // 2  # only the missing half crossed the wire
    assert not (dest / "monet2photo.zip.part").exists()


def test_server_without_ranges_restarts_cleanly(tmp_path, server):
    base, zpath, handler = server
    handler.ranges = False
    dest = tmp_path / "raw"
    dest.mkdir()
    (dest / "monet2photo.zip.part").write_bytes(b"stale partial bytes")
    proc = run_script("data_prep/download.py", "monet2photo", "--out", dest, "--url", f"{base}/tiny2photo.zip")
    assert proc.returncode == 0, proc.stderr
    assert (dest / "monet2photo.zip").read_bytes() == zpath.read_bytes()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_names_url_and_alternative(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/monet2photo.zip"
    proc = run_script("data_prep/download.py", "monet2photo", "--out", tmp_path, "--url", url, "--retries", 1)
    line = assert_one_error_line(proc, f"cannot download {url}", "--from PATH_TO_ZIP_OR_DIR")
    assert proc.returncode == 1 and len(line) < 400


def test_not_found_and_unknown_name(tmp_path, server):
    base, _, _ = server
    proc = run_script("data_prep/download.py", "monet2photo", "--out", tmp_path, "--url", f"{base}/nope.zip")
    assert_one_error_line(proc, "nope.zip: not found on the server (404)")
    proc = run_script("data_prep/download.py", "picasso2photo", "--out", tmp_path)
    assert_one_error_line(proc, "unknown dataset 'picasso2photo'; known: monet2photo, cezanne2photo")


def test_a_mirror_is_a_folder_of_zips_and_a_web_page_is_never_taken_for_one(tmp_path, server):
    base, zpath, _ = server
    shutil.copy(zpath, zpath.parent / "cezanne2photo.zip")
    proc = run_script("data_prep/download.py", "cezanne2photo", "--out", tmp_path / "m", "--mirror", base + "/")
    assert proc.returncode == 0, proc.stderr
    assert f"from {base}/cezanne2photo.zip" in proc.stdout and (tmp_path / "m" / "cezanne2photo" / "trainA").is_dir()
    (zpath.parent / "listing.zip").write_text("<!DOCTYPE html>\n<html><body><a href='x.zip'>x.zip</a></body></html>\n")
    proc = run_script("data_prep/download.py", "monet2photo", "--out", tmp_path / "w", "--url", f"{base}/listing.zip")
    assert_one_error_line(proc, "listing.zip answered with a web page", "--mirror")
    assert not (tmp_path / "w" / "monet2photo.zip").exists()  # not kept as a "damaged zip"
    proc = run_script("data_prep/download.py", "monet2photo", "--out", tmp_path / "w", "--url", base + "/")
    assert_one_error_line(proc, "names a folder; give the zip's own URL, or pass the folder as --mirror")
    proc = run_script("data_prep/download.py", "monet2photo", "--dest", tmp_path / "old", "--from", zpath)
    assert proc.returncode == 0 and "note: --dest is spelled --out now" in proc.stderr
    assert (tmp_path / "old" / "monet2photo" / "trainB").is_dir()


def test_from_local_zip(tmp_path, server):
    _, zpath, _ = server
    proc = run_script("data_prep/download.py", "ukiyoe2photo", "--from", zpath, "--out", tmp_path / "raw")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "raw" / "ukiyoe2photo" / "trainA" / "000000.png").is_file()
    assert json.loads((tmp_path / "raw" / "ukiyoe2photo.source.json").read_text())["sha256"] == file_sha256(zpath)


# ---------------------------------------------------------------------------------------------
# Released weights by name: python -m brushwork.pretrained


@pytest.fixture
def weights_server(tmp_path):
    """Serves a 'style_monet.pth' (a tiny generator in the original format) and a wrong 'vgg19-dcbb9e9d.pth'."""
    import torch

    from brushwork.models.networks import ResnetGenerator, init_weights

    served = tmp_path / "models"
    served.mkdir()
    torch.manual_seed(0)
    torch.save(init_weights(ResnetGenerator(ngf=8, n_blocks=2)).state_dict(), served / "style_monet.pth")
    (served / "vgg19-dcbb9e9d.pth").write_bytes(b"not the real vgg19 weights" * 100)
    (served / "style_cezanne.pth").write_bytes(b"<!DOCTYPE html><html><body>Not found</body></html>")
    (served / "style_ukiyoe.pth").write_bytes(bytes(range(256)) * 16)  # 4,096 random-looking bytes
    torch.save({"features.0.weight": torch.zeros(1)}, served / "style_vangogh.pth")  # weights, but not a generator
    handler = type("Handler", (RangeHandler,), {"sent": 0, "ranges": True})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            lambda *a, **k: handler(*a, directory=str(served), **k))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served, handler
    httpd.shutdown()


def pretrained(*args, hub):
    import subprocess
    import sys

    from conftest import REPO

    return subprocess.run([sys.executable, "-m", "brushwork.pretrained", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=REPO, env={**__import__("os").environ, "TORCH_HOME": str(hub)})


def test_released_model_fetch_resume_and_translate_by_name(tmp_path, weights_server):
    base, served, handler = weights_server
    hub = tmp_path / "torch_home"
    target = hub / "hub" / "checkpoints" / "cyclegan" / "style_monet.pth"
    data = (served / "style_monet.pth").read_bytes()
    target.parent.mkdir(parents=True)
    (target.parent / "style_monet.pth.part").write_bytes(data[:1000])  # an interrupted earlier download
    proc = pretrained("style_monet", "--mirror", base, hub=hub)
    assert proc.returncode == 0, proc.stderr
    assert target.read_bytes() == data and handler.sent == len(data) - 1000  # resumed, not restarted
    record = json.loads((target.parent / "brushwork_downloads.json").read_text())["style_monet.pth"]
    assert record["sha256"] == file_sha256(target) and record["url"] == f"{base}/style_monet.pth"
    photos = tmp_path / "photos"
    make_synth(tmp_path / "s", 2, n_test=1)
    photos = tmp_path / "s" / "testB"
    out = tmp_path / "monet"
    proc = run_script("eval/translate.py", "--model", "style_monet", "--input", photos, "--out", out,
                      env={"TORCH_HOME": str(hub)})
    assert proc.returncode == 0, proc.stderr
    assert f"weights: released model style_monet: generator {target}" in proc.stdout
    assert sorted(p.name for p in out.glob("*.png")) == ["000000.png"]
    target.write_bytes(data[:-10] + b"0123456789")  # changed on disk since: refused, with the fix
    proc = run_script("eval/translate.py", "--model", "style_monet", "--input", photos, "--out", tmp_path / "o2",
                      env={"TORCH_HOME": str(hub)})
    assert_one_error_line(proc, "style_monet.pth: changed since it was downloaded", "delete it and fetch it again")


def test_wrong_checksum_is_refused_and_nothing_is_left(tmp_path, weights_server):
    base, _, _ = weights_server
    hub = tmp_path / "torch_home"
    proc = pretrained("vgg19", "--mirror", base, hub=hub)
    assert_one_error_line(proc, "vgg19-dcbb9e9d.pth: sha256", "does not match", "starts with dcbb9e9d")
    assert not list((hub / "hub" / "checkpoints").glob("vgg19*"))


def test_a_download_is_checked_by_content_before_it_is_recorded(tmp_path, weights_server):
    base, _, _ = weights_server
    hub = tmp_path / "torch_home"
    for name, needle in (("style_cezanne", "answered with a web page or a message, not weights"),
                         ("style_ukiyoe", "not a PyTorch weights file"),
                         ("style_vangogh", "holds no model.1.weight (not the CycleGAN generator")):
        proc = pretrained(name, "--mirror", base, hub=hub)
        assert_one_error_line(proc, f"{base}/{name}.pth", needle, "saved nothing")
    folder = hub / "hub" / "checkpoints" / "cyclegan"
    assert not list(folder.glob("*.pth"))  # nothing kept
    record = folder / "brushwork_downloads.json"
    assert not record.exists() or "style_" not in record.read_text()  # and nothing recorded as good


def test_offline_is_one_line_naming_the_url_and_the_place(tmp_path):
    hub = tmp_path / "torch_home"
    url = f"http://127.0.0.1:{free_port()}"
    proc = pretrained("style_cezanne", "--mirror", url, "--retries", 0, hub=hub)
    line = assert_one_error_line(proc, f"cannot download {url}/style_cezanne.pth",
                                 f"put it at {hub}/hub/checkpoints/cyclegan/style_cezanne.pth", "--from FILE")
    assert len(line) < 500
    (tmp_path / "photos").mkdir()
    proc = run_script("eval/translate.py", "--model", "style_vangogh", "--input", tmp_path / "photos", "--out",
                      tmp_path / "o",
                      env={"TORCH_HOME": str(hub)})
    assert_one_error_line(proc, "style_vangogh is not downloaded yet: python -m brushwork.pretrained style_vangogh",
                          "efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_vangogh.pth")
    proc = pretrained("--list", hub=hub)
    assert proc.returncode == 0 and "style_monet" in proc.stdout and "vgg16-397923af.pth" in proc.stdout
    proc = pretrained("picasso", hub=hub)
    assert_one_error_line(proc, "unknown weights 'picasso'; known: apple2orange")
