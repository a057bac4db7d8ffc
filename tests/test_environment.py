"""Every environment variable and Hub identifier is checked before it reaches the standard library or a client
library: a refusal is one line naming the variable (``EnvironmentVariableError``) or the argument
(``InputError``), sent before any request, and nothing is created under a ``HOME`` that does not exist."""

from __future__ import annotations

import pytest

import adain
from adain.cli import main
from adain.errors import EnvironmentVariableError
from adain.weights import _hub_settings
from adain.weights._cache import cache_root


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("ADAIN_CACHE", "XDG_CACHE_HOME", "HF_ENDPOINT", "HF_HUB_OFFLINE", "RANK", "ADAIN_CPU_BF16"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()


def _refused(name: str, call) -> EnvironmentVariableError:
    with pytest.raises(EnvironmentVariableError) as info:
        call()
    assert info.value.variable == name and str(info.value).startswith(f"{name}=") and "\n" not in str(info.value)
    return info.value


# ---- the cache root ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, reason",
    [
        ("relative/cache", "absolute"),
        ("/tmp/" + "x" * 256 + "/cache", "at most 255 bytes"),
        ("/" + "/".join(["abcdefgh"] * 500), "4096"),
        ("~no-such-user-here/cache", "unknown"),
    ],
    ids=["relative", "long-name", "long-path", "unknown-user"],
)
def test_adain_cache_that_no_file_system_takes_is_refused_naming_it(value, reason, clean_env, monkeypatch):
    monkeypatch.setenv("ADAIN_CACHE", value)
    assert reason in str(_refused("ADAIN_CACHE", cache_root))


def test_adain_cache_that_is_a_file_or_cannot_be_created_is_refused_naming_it(clean_env, monkeypatch, tmp_path):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("ADAIN_CACHE", str(tmp_path / "file"))
    assert "is a file" in str(_refused("ADAIN_CACHE", cache_root))
    monkeypatch.setenv("ADAIN_CACHE", str(tmp_path / "file" / "cache"))  # under a file: cannot be created
    assert f"{tmp_path / 'file'} is not a writable folder" in str(_refused("ADAIN_CACHE", cache_root))
    monkeypatch.setenv("ADAIN_CACHE", str(tmp_path / "new" / "cache"))
    assert cache_root() == tmp_path / "new" / "cache" and not (tmp_path / "new").exists()  # checked, not created


def test_the_default_cache_under_a_missing_home_is_refused_and_nothing_is_created(clean_env, monkeypatch, tmp_path):
    missing = tmp_path / "nonexistent"
    monkeypatch.setenv("HOME", str(missing))
    assert "does not exist" in str(_refused("HOME", cache_root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(missing / ".cache"))
    _refused("XDG_CACHE_HOME", cache_root)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the XDG specification says: HOME again
    _refused("HOME", cache_root)
    assert not missing.exists()


def test_download_under_a_missing_home_is_one_line_and_creates_nothing(clean_env, monkeypatch, tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    monkeypatch.setenv("HOME", str(missing))
    monkeypatch.setattr(_hub_settings.constants, "HF_HUB_CACHE", str(missing / ".cache" / "huggingface" / "hub"))
    for name in ("default", "someone/some-model"):  # the package's cache, then huggingface_hub's
        assert main(["download", name]) == 2  # a setting the command cannot use: a usage error
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"adain: error: HOME={str(missing)!r}: ") and "\n" not in err, err
    assert not missing.exists()


# ---- network and Hub settings --------------------------------------------------------------------


@pytest.mark.parametrize("value", ["ftp://example.com", "http://", "http://host:99999", "not a url", "https://a b"])
def test_hf_endpoint_that_is_not_a_url_is_refused_before_any_request(value, clean_env, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", value)
    _refused("HF_ENDPOINT", lambda: adain.load_pretrained("someone/some-model"))


@pytest.mark.parametrize(
    "name, value",
    [
        ("HF_HUB_OFFLINE", "maybe"),
        ("HF_HUB_ETAG_TIMEOUT", "1e300"),
        ("HF_HUB_ETAG_TIMEOUT", "99999999999999999999"),
        ("HF_HUB_DOWNLOAD_TIMEOUT", "0"),
        ("HF_HUB_DOWNLOAD_TIMEOUT", "2.5"),
    ],
)
def test_hub_settings_out_of_range_are_refused_naming_them(name, value, clean_env, monkeypatch):
    monkeypatch.setenv(name, value)
    _refused(name, lambda: adain.load_pretrained("someone/some-model"))


def test_yes_and_no_spellings_of_hf_hub_offline_are_accepted(clean_env, monkeypatch):
    for value, offline in (("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False), ("", False)):
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        assert _hub_settings.hub_offline() is (offline or bool(_hub_settings.constants.HF_HUB_OFFLINE))


@pytest.mark.parametrize("name, value", [("RANK", "abc"), ("RANK", "-1"), ("RANK", "1e400")])
def test_launcher_ranks_are_checked_naming_the_variable(name, value, clean_env, monkeypatch, tmp_path):
    from adain.training._lock import lock_run_dir

    monkeypatch.setenv(name, value)

    def lock():
        with lock_run_dir(tmp_path / "run"):
            pass

    _refused(name, lock)


def test_adain_cpu_bf16_other_than_0_or_1_is_refused(clean_env, monkeypatch):
    from adain._runtime import cpu_native_bf16

    monkeypatch.setenv("ADAIN_CPU_BF16", "yes please")
    _refused("ADAIN_CPU_BF16", cpu_native_bf16)
    monkeypatch.setenv("ADAIN_CPU_BF16", "1")
    assert cpu_native_bf16(frozenset()) is True


# ---- Hub identifiers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, argument",
    [
        ("hf-hub:someone/model@" + "a" * 5000, "revision"),  # was OSError: [Errno 36] File name too long
        ("hf-hub:someone/model@bad..revision", "revision"),
        ("hf-hub:someone/model@-x", "revision"),
        ("someone/" + "m" * 97, "repo_id"),
        ("x" * 300 + "/model", "repo_id"),  # too long for a local folder name, too long for the Hub
        ("someone/mo--del", "repo_id"),
        ("someone/model.git", "repo_id"),
    ],
    ids=["long-revision", "dots", "dash", "long-name", "long-user", "double-dash", "dot-git"],
)
def test_hub_names_outside_the_hubs_rules_are_refused_naming_the_argument(name, argument, clean_env, hub, tmp_path):
    with pytest.raises(adain.InputError, match=f"^{argument}: ") as info:
        adain.load_pretrained(name, cache_dir=tmp_path / "cache")
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    assert hub.requests == []  # refused before any request


def test_a_long_revision_on_the_command_line_is_one_line(clean_env, hub, capsys):
    assert main(["download", "hf-hub:someone/model@" + "r" * 5000]) in (1, 2)
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith(("adain: error: revision: ", "adain: error: --revision: "))
        and "\n" not in err
        and len(err) < 400
    )
    assert hub.requests == []


def test_revisions_the_hub_uses_are_accepted():
    for revision in ("main", "v1.0", "refs/pr/12", "0123456789abcdef0123456789abcdef01234567", "feature/x_y-z"):
        _hub_settings.check_hub_id("someone/model", revision)
    _hub_settings.check_hub_id("A-b_c.d/" + "m" * 96)


@pytest.mark.slow  # a fresh interpreter importing torch: about 7 s on 2 busy cores
@pytest.mark.parametrize("value", ["abc", "1e300"])
def test_a_hub_timeout_huggingface_hub_cannot_import_with_is_one_line_not_a_traceback(value, tmp_path):
    """huggingface_hub parses HF_HUB_ETAG_TIMEOUT with int() when imported; ``import adain`` must survive it."""
    import os
    import subprocess
    import sys

    from conftest import REPO_ROOT

    env = {**os.environ, "HF_HUB_ETAG_TIMEOUT": value, "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, "-m", "adain", "download", "someone/model", "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    assert run.returncode == 2
    assert run.stderr.strip() == f"adain: error: HF_HUB_ETAG_TIMEOUT={value!r}: expected an integer from 1 to 86400"
