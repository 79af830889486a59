"""Where shards live: a local folder or any fsspec URL (s3://, gs://, http(s)://, memory://).

Object storage is an optional extra (``pip install -e '.[s3]'`` in the checkout, for s3fs). For ``s3://`` the
endpoint and credentials come from the usual AWS settings: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (or a profile), ``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` for S3-compatible stores (MinIO, Ceph, a local test server).
"""

from __future__ import annotations

import os

from brushwork.core.errors import BrushworkError

EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs"),
          "az": ("adlfs", "azure"), "abfs": ("adlfs", "azure")}


def protocol_of(url: str) -> str:
    return str(url).split("://", 1)[0].lower() if "://" in str(url) else "file"


def storage_options(url: str) -> dict:
    """Options fsspec needs beyond the URL (an S3 endpoint from the environment)."""
    if protocol_of(url) in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
    return {}


def filesystem(url: str):
    """(fsspec filesystem, path inside it) for ``url``; one clear line when it cannot be reached at all."""
    import fsspec

    protocol = protocol_of(url)
    try:
        return fsspec.core.url_to_fs(str(url), **storage_options(url))
    except ImportError:
        package, extra = EXTRAS.get(protocol, (f"the fsspec backend for {protocol}://", ""))
        hint = f"pip install -e '.[{extra}]' in the brushwork checkout" if extra else f"install {package}"
        raise BrushworkError(f"{url}: {protocol}:// storage needs {package}; {hint}") from None
    except ValueError as e:
        if "Protocol not known" in str(e) or "not known" in str(e):
            raise BrushworkError(f"{url}: unknown storage protocol {protocol}://; use a local path or a URL "
                                 "such as s3://bucket/path, gs://bucket/path, https://host/path") from None
        raise




def storage_error(url: str, err: Exception) -> BrushworkError | None:
    """One line for what object storage answers when it cannot serve ``url`` at all; None if ``err`` is
    something else (the caller re-raises it)."""
    name, text = type(err).__name__, str(err)
    endpoint = storage_options(url).get("client_kwargs", {}).get("endpoint_url") or "the default endpoint"
    if "Credentials" in name or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return BrushworkError(f"{url}: the storage refused the credentials ({name}); set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for this bucket")
    if isinstance(err, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        return BrushworkError(f"{url}: access denied; check the credentials' rights on this bucket")
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return BrushworkError(f"{url}: no such bucket; check the URL (and AWS_ENDPOINT_URL: {endpoint})")
    if isinstance(err, ConnectionError) or any(k in name for k in ("EndpointConnection", "ConnectTimeout",
                                                                   "ClientConnector", "ConnectionError")):
        return BrushworkError(f"{url}: cannot reach the storage at {endpoint} ({name}); check AWS_ENDPOINT_URL "
                              "and the network")
    return None
