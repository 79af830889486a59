"""A real S3 API server on 127.0.0.1 (moto) that counts the bytes and requests it serves.

Used by ``bench/loader.py --s3`` and the tests to measure what a reader fetches from object
storage: the figure is what the server sent, not what the client says it asked for.
"""

from __future__ import annotations

if __name__ == "__main__":  # a module the benchmarks import, not a command
    print("bench/s3_server.py: a counting S3 server on 127.0.0.1, shared by the benchmarks; not a command. "
          "Run a benchmark instead (each answers --help): bench/train_step.py, bench/loader.py, bench/gatys.py, "
          "bench/fast_style.py, "
          "bench/conv.py, bench/roofline.py, bench/profile_step.py, bench/ddp_overhead.py, bench/gpu_check.py")
    raise SystemExit(0)

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BUCKET = "brushwork-bench"


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.bytes = self.gets = 0

    def reset(self) -> None:
        with self.lock:
            self.bytes = self.gets = 0


def counting(app, counter: Counter):
    """WSGI middleware: adds the body bytes of every GET response to ``counter``."""
    def wrapped(environ, start_response):
        body = app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "GET":
            return body
        chunks = list(body)
        with counter.lock:
            counter.gets += 1
            counter.bytes += sum(len(c) for c in chunks)
        return chunks
    return wrapped


@contextmanager
def s3_server(bucket: str = BUCKET) -> Iterator[tuple[dict, Counter]]:
    """(environment for fsspec/s3fs clients, byte counter); ``bucket`` exists. The environment is set
    for this process while the server runs, and restored after."""
    import logging

    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    counter = Counter()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = counting(DomainDispatcherApplication(create_backend_app), counter)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        s3fs.S3FileSystem(client_kwargs={"endpoint_url": env["AWS_ENDPOINT_URL"]}).mkdir(bucket)
        yield env, counter
    finally:
        server.shutdown()
        thread.join()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
