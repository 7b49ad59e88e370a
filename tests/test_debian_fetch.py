"""Tests for rnn_toolkit.data.cache.fetch_debian_package, with a fake `apt-get` on PATH."""

import hashlib
import os
import shutil
import stat
import sys

import pytest

from rnn_toolkit.data import cache

FAKE_DEB = b"!<arch>\npretend this is a Debian package\n"
FAKE_SHA256 = hashlib.sha256(FAKE_DEB).hexdigest()

# Behaviour by $FAKE_APT_MODE: "ok" downloads, "fail" never does, "after_update" downloads
# once `apt-get update` has run (a fresh machine without package lists).
_FAKE_APT_GET = """#!{python}
import os, pathlib, sys
state = pathlib.Path(os.environ["FAKE_APT_STATE"])
with open(state / "calls", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
arguments = [a for a in sys.argv[1:] if a != "-q"]
mode = os.environ["FAKE_APT_MODE"]
if arguments[0] == "update":
    if mode == "fail":
        sys.exit("E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease")
    (state / "updated").touch()
    sys.exit(0)
if arguments[0] == "download":
    package, version = arguments[1].split("=")
    if mode == "ok" or (mode == "after_update" and (state / "updated").exists()):
        pathlib.Path(f"{{package}}_{{version}}_all.deb").write_bytes(state.joinpath("deb").read_bytes())
        sys.exit(0)
    print("Reading package lists...")
    sys.exit(f"E: Unable to locate package {{package}}")
sys.exit(f"unexpected arguments {{arguments}}")
"""


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


class FakeApt:
    def __init__(self, folder, monkeypatch):
        self.state = folder
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        script = bin_dir / "apt-get"
        script.write_text(_FAKE_APT_GET.format(python=sys.executable))
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        (folder / "deb").write_bytes(FAKE_DEB)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_APT_STATE", str(folder))
        self.monkeypatch = monkeypatch
        self.mode = "ok"

    @property
    def mode(self):
        return os.environ["FAKE_APT_MODE"]

    @mode.setter
    def mode(self, value):
        self.monkeypatch.setenv("FAKE_APT_MODE", value)

    @property
    def calls(self):
        log = self.state / "calls"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    folder = tmp_path / "apt"
    folder.mkdir()
    return FakeApt(folder, monkeypatch)


def test_downloads_once_then_reuses_the_cached_file(tmp_cache, fake_apt):
    path = cache.fetch_debian_package("fake-data", "1.0-2", FAKE_SHA256)
    assert path == tmp_cache.resolve() / "debian" / "fake-data_1.0-2_all.deb"
    assert path.read_bytes() == FAKE_DEB
    assert fake_apt.calls == ["-q download fake-data=1.0-2"]
    fake_apt.mode = "fail"  # a second call must not run apt-get at all
    assert cache.fetch_debian_package("fake-data", "1.0-2", FAKE_SHA256.upper()) == path
    assert len(fake_apt.calls) == 1
    assert not [p for p in tmp_cache.iterdir() if p.name.startswith(".download-")]


def test_a_deb_placed_by_hand_is_used_without_apt(tmp_cache, fake_apt):
    folder = tmp_cache / "debian"
    folder.mkdir(parents=True)
    (folder / "fake-data_1:1.0_amd64.deb").write_bytes(b"epoch colon is not apt's spelling")
    (folder / "fake-data_1%3a1.0_amd64.deb").write_bytes(FAKE_DEB)
    path = cache.fetch_debian_package("fake-data", "1:1.0", FAKE_SHA256)
    assert path.name == "fake-data_1%3a1.0_amd64.deb"
    assert fake_apt.calls == []


def test_checksum_mismatch_names_both_digests_and_keeps_nothing(tmp_cache, fake_apt):
    wrong = "0" * 64
    with pytest.raises(ValueError) as error:
        cache.fetch_debian_package("fake-data", "1.0-2", wrong)
    assert wrong in str(error.value) and FAKE_SHA256 in str(error.value)
    assert not list(tmp_cache.rglob("*.deb"))


def test_a_stale_cached_file_is_replaced_after_checking(tmp_cache, fake_apt):
    stale = tmp_cache / "debian" / "fake-data_1.0-2_all.deb"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"truncated")
    assert cache.fetch_debian_package("fake-data", "1.0-2", FAKE_SHA256).read_bytes() == FAKE_DEB
    assert len(fake_apt.calls) == 1


def test_missing_package_lists_are_refreshed_once_as_root(tmp_cache, fake_apt, monkeypatch):
    monkeypatch.setattr(cache, "_running_as_root", lambda: True)
    fake_apt.mode = "after_update"
    path = cache.fetch_debian_package("fake-data", "1.0-2", FAKE_SHA256)
    assert path.read_bytes() == FAKE_DEB
    assert fake_apt.calls == [
        "-q download fake-data=1.0-2", "-q update", "-q download fake-data=1.0-2"
    ]


def test_failure_as_root_shows_apt_stderr_and_where_to_put_the_file(tmp_cache, fake_apt, monkeypatch):
    monkeypatch.setattr(cache, "_running_as_root", lambda: True)
    fake_apt.mode = "fail"
    with pytest.raises(RuntimeError) as error:
        cache.fetch_debian_package("fake-data", "1.0-2", FAKE_SHA256)
    message = str(error.value)
    assert "fake-data=1.0-2" in message
    assert "then `apt-get update`, failed" in message
    assert "Failed to fetch" in message  # the update's error: the root cause
    assert str(tmp_cache.resolve() / "debian" / "fake-data_1.0-2_all.deb") in message
    assert fake_apt.calls == ["-q download fake-data=1.0-2", "-q update"]


def test_failure_without_root_tells_the_user_to_update(tmp_cache, fake_apt, monkeypatch):
    monkeypatch.setattr(cache, "_running_as_root", lambda: False)
    fake_apt.mode = "after_update"
    with pytest.raises(RuntimeError) as error:
        cache.fetch_debian_package("fake-data", "1.0-2", FAKE_SHA256)
    message = str(error.value)
    assert "Unable to locate package fake-data" in message
    assert "sudo apt-get update" in message
    assert "fake-data_1.0-2_all.deb" in message
    assert fake_apt.calls == ["-q download fake-data=1.0-2"]  # no update attempted


def test_missing_apt_get_is_explained(tmp_cache, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(RuntimeError, match="`apt-get` is not on this machine") as error:
        cache.fetch_debian_package("fake-data", "1.0-2", FAKE_SHA256)
    assert "fake-data_1.0-2_all.deb" in str(error.value)


def test_arguments_are_checked_before_apt_runs(tmp_cache, fake_apt):
    for package, version, sha256, match in (
        ("fake-data", "1.0", "abc", "`sha256`"),
        ("Fake Data", "1.0", FAKE_SHA256, "`package`"),
        ("fake-data", "1.0 --option", FAKE_SHA256, "`version`"),
        ("fake-data", None, FAKE_SHA256, "`version`"),
    ):
        with pytest.raises(ValueError, match=match):
            cache.fetch_debian_package(package, version, sha256)
    assert fake_apt.calls == []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get (Debian/Ubuntu)")
def test_real_apt_get_download_of_a_pinned_package(tmp_cache):
    """Downloads the real 2.8 MB `sword-text-kjv` package from the Debian registry."""
    sha256 = "9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57"
    path = cache.fetch_debian_package("sword-text-kjv", "14.3-1", sha256)
    assert path.name == "sword-text-kjv_14.3-1_all.deb"
    assert path.stat().st_size == 2_800_476
    assert cache.sha256_of(path) == sha256
