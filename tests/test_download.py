"""``adain.download.download_url`` against a loopback file server."""

from __future__ import annotations

import hashlib
import socket

import pytest
from http_servers import FileServer

import adain
from adain.weights.download import download_url

BODY = bytes(range(256)) * 64


@pytest.fixture
def server():
    with FileServer() as s:
        yield s


def test_download_reports_progress_and_verifies_sha256(server, tmp_path):
    url = server.add("/f.bin", BODY)
    reports = []
    out = download_url(url, tmp_path / "f.bin", sha256=hashlib.sha256(BODY).hexdigest(), progress=reports.append)
    assert out.read_bytes() == BODY
    assert reports[-1].done_bytes == reports[-1].total_bytes == len(BODY)


def test_failed_download_leaves_no_partial_file_and_keeps_existing_one(server, tmp_path):
    url = server.add("/f.bin", BODY, truncate_to=100)
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"previous")
    with pytest.raises(adain.WeightsNotFoundError, match="ended early"):
        download_url(url, dest)
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_connection_refused_is_not_found(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(adain.WeightsNotFoundError, match="connection refused"):
        download_url(f"http://127.0.0.1:{port}/f.bin", tmp_path / "f.bin", timeout=2)


def test_unsupported_scheme_is_refused(tmp_path):
    with pytest.raises(adain.WeightsNotFoundError, match="scheme 'ftp'"):
        download_url("ftp://example.invalid/f.bin", tmp_path / "f.bin")


def test_file_url_mirror_works(tmp_path):
    src = tmp_path / "mirror" / "f.bin"
    src.parent.mkdir()
    src.write_bytes(BODY)
    assert download_url(src.as_uri(), tmp_path / "out.bin").read_bytes() == BODY
