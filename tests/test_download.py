"""``adain.download.download_url`` against a loopback file server."""

from __future__ import annotations

import dataclasses
import hashlib
import socket

import pytest
from http_servers import FileServer

import adain
from adain.errors import EnvironmentVariableError
from adain.weights import _download as download
from adain.weights import _registry as registry
from adain.weights._download import download_url
from adain.weights._registry import UrlSource

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


# ---- size limits: a mirror may not stream without end -------------------------------------------

ENDLESS = 64 << 20  # "endless" to a client that respects its limits; a client that does not stops here anyway


def test_unannounced_stream_is_cut_off_at_the_expected_size(server, tmp_path):
    url = server.add("/f.bin", BODY, unannounced=ENDLESS)
    reports = []
    with pytest.raises(adain.CorruptWeightsError, match=f"more than the expected {len(BODY)} bytes"):
        download_url(url, tmp_path / "f.bin", size=len(BODY), progress=reports.append)
    assert max((r.done_bytes for r in reports), default=0) <= len(BODY)  # stopped at the first byte too many
    assert list(tmp_path.iterdir()) == []


def test_unannounced_stream_of_unknown_size_stops_at_the_cap(server, tmp_path):
    url = server.add("/f.bin", BODY, unannounced=ENDLESS)
    with pytest.raises(adain.CorruptWeightsError, match="more than 1048576 bytes without announcing its size"):
        download_url(url, tmp_path / "f.bin", max_bytes=1 << 20)
    assert list(tmp_path.iterdir()) == []


def test_the_cap_is_a_module_constant_used_by_default(server, tmp_path, monkeypatch):
    assert download.MAX_DOWNLOAD_BYTES == 2 * 1024**3
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", 1 << 20)
    url = server.add("/f.bin", BODY, unannounced=ENDLESS)
    with pytest.raises(adain.CorruptWeightsError, match="more than 1048576 bytes .*MAX_DOWNLOAD_BYTES"):
        download_url(url, tmp_path / "f.bin")


def test_unannounced_stream_of_the_expected_size_is_accepted(server, tmp_path):
    url = server.add("/f.bin", BODY, unannounced=len(BODY))
    assert download_url(url, tmp_path / "f.bin", size=len(BODY)).read_bytes() == BODY


def test_announced_length_other_than_the_expected_size_is_refused_before_downloading(server, tmp_path):
    url = server.add("/f.bin", BODY)
    with pytest.raises(adain.CorruptWeightsError, match=f"announces {len(BODY)} bytes where 100 are expected"):
        download_url(url, tmp_path / "f.bin", size=100)
    assert list(tmp_path.iterdir()) == []


def test_announced_length_over_the_cap_is_refused(server, tmp_path):
    url = server.add("/f.bin", BODY)
    with pytest.raises(adain.CorruptWeightsError, match="over the limit of 1000"):
        download_url(url, tmp_path / "f.bin", max_bytes=1000)


# ---- ADAIN_DOWNLOAD_TIMEOUT ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "abc", "1e400", "1e300", "86401", "0.0001"])
def test_bad_timeout_variable_is_a_one_line_error_naming_it(value, server, tmp_path, monkeypatch):
    # 1e300 is finite but overflows what a socket accepts (OverflowError from the standard library before).
    monkeypatch.setenv("ADAIN_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(EnvironmentVariableError, match=f"^ADAIN_DOWNLOAD_TIMEOUT={value!r}: expected a number") as info:
        download_url(server.add("/f.bin", BODY), tmp_path / "f.bin")
    assert "\n" not in str(info.value) and server.requests == []
    assert info.value.variable == "ADAIN_DOWNLOAD_TIMEOUT" and not isinstance(info.value, adain.InputError)


@pytest.mark.parametrize("value", [1e300, 0, float("nan"), True])
def test_bad_timeout_argument_is_an_input_error_naming_it(value, server, tmp_path):
    with pytest.raises(adain.InputError, match="^timeout=.*: expected a number of seconds from 0.001 to 86400"):
        download_url(server.add("/f.bin", BODY), tmp_path / "f.bin", timeout=value)
    assert server.requests == []


def test_good_timeout_variable_is_used(monkeypatch):
    monkeypatch.setenv("ADAIN_DOWNLOAD_TIMEOUT", " 2.5 ")
    assert download.download_timeout() == 2.5
    monkeypatch.setenv("ADAIN_DOWNLOAD_TIMEOUT", "")
    assert download.download_timeout() == download.DEFAULT_TIMEOUT_S


def test_bad_timeout_variable_reaches_the_command_line_as_one_line(server, monkeypatch, tmp_path, capsys):
    from adain.cli import main

    entry = dataclasses.replace(
        registry.REFERENCE_PORT, name="test-weights", sources=(UrlSource(server.url + "/m"),)
    )  # never the real mirror
    monkeypatch.setitem(registry.REGISTRY, "test-weights", entry)
    monkeypatch.setenv("ADAIN_DOWNLOAD_TIMEOUT", "inf")
    assert main(["download", "test-weights", "--cache-dir", str(tmp_path)]) == 2  # a setting that cannot be used
    err = capsys.readouterr().err
    assert err.startswith("adain: error: ADAIN_DOWNLOAD_TIMEOUT='inf'") and err.count("\n") == 1
    assert server.requests == []
