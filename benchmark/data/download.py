"""Fetching published data files: pinned checksums, mirrors tried in order, no prompts.

Every downloaded dataset (MD17, rMD17, alanine dipeptide) gets its raw files
through :func:`fetch`, which uses pooch (hashing, streaming, progress bars):

* **Pinned checksums.**  ``benchmark/data/checksums.json`` (in the repository)
  pins a hash for every raw file: the published ones (md5 or sha256) and,
  for files with no published checksum, the sha256 recorded on the first
  download (with a one-time warning asking to commit the file).  Later
  downloads and local imports are verified against the pin.
* **Mirrors in order.**  Each file has a list of candidate URLs (every mirror
  for the current server name, then every mirror for older names); a 404 or a
  dead host moves on to the next URL, a transfer cut mid-file is restarted
  from scratch (``retries`` times) before moving on.
* **Atomic.**  pooch streams into a temporary file inside a per-file staging
  folder and moves it only after the hash matched; we then rename it onto its
  final name.  A download killed half-way leaves only the staging folder,
  which the next attempt removes first, so partial files are never used.
* **Errors say what to do.**  A mismatch against a pinned value deletes
  nothing (except pooch's own temporary file) and explains the two ways out;
  when every URL fails (offline, hosts down) the error, raised within seconds,
  names the file, every URL tried with its failure, and the command that
  imports a local copy: ``mdhorizon data import <kind> /path/to/dir``.

The download cache lives next to the datasets (``<work>/data/.downloads/<kind>``)
so that deleting a converted dataset never forces a new download.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from benchmark.errors import UserError
from benchmark.io import atomic_path

PINS_PATH = Path(__file__).resolve().with_name("checksums.json")
PINS_ENV = "MDHORIZON_CHECKSUMS"  # tests point this at a temporary pin file
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0


class DownloadError(UserError, RuntimeError):
    """A raw data file could not be obtained; the message says what to do."""

    label = "download error"


class ChecksumError(DownloadError):
    """A file's hash differs from its pinned value."""


class OfflineError(DownloadError):
    """Every candidate URL failed (no network, hosts down, files moved)."""


@dataclass(frozen=True)
class RemoteFile:
    """One raw file of a dataset kind: its local name and candidate URLs in order."""

    name: str
    urls: tuple[str, ...]
    kind: str  # dataset kind, for the import hint
    aliases: tuple[str, ...] = ()  # other names the file had (accepted by `data import`)


@dataclass
class Fetched:
    path: Path
    sha256: str
    md5: str
    bytes: int
    url: str | None  # None when it came from the cache or a local import
    pin: dict = field(default_factory=dict)

    def record(self) -> dict:
        """What the dataset manifest stores about this source file."""
        return {"file": self.path.name, "url": self.url or self.pin.get("url"), "sha256": self.sha256,
                "md5": self.md5, "bytes": self.bytes, "pin_source": self.pin.get("source", "")}


def import_hint(kind: str) -> str:
    return f"mdhorizon data import {kind} /path/to/dir"


def expand_urls(mirrors, names) -> tuple[str, ...]:
    """Candidate URLs: every mirror for the first name, then every mirror for the next.

    A mirror containing ``{name}`` is formatted, one ending in ``/`` gets the
    name appended, anything else is a full URL of the file itself.
    """
    urls = []
    for name in names:
        for m in mirrors:
            url = m.format(name=name) if "{name}" in m else (m + name if m.endswith("/") else m)
            if url not in urls:
                urls.append(url)
    return tuple(urls)


def cache_dir_for(out: str | Path, kind: str, params: dict) -> Path:
    """``params['cache_dir']`` when set, else ``<dataset dir>/../.downloads/<kind>``."""
    if params.get("cache_dir"):
        return Path(params["cache_dir"]).expanduser()
    return Path(out).resolve().parent / ".downloads" / kind


# ---- pinned hashes ----------------------------------------------------------------
def pins_path() -> Path:
    return Path(os.environ.get(PINS_ENV) or PINS_PATH)


def load_pins(path: Path | None = None) -> dict:
    path = path or pins_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text()).get("files", {})
    except json.JSONDecodeError as exc:
        raise DownloadError(f"{path}: not valid JSON ({exc}); restore it from git") from None


def pinned_hash(pin: dict | None) -> str | None:
    """``sha256:...`` when pinned, else ``md5:...``, else None."""
    if not pin:
        return None
    if pin.get("sha256"):
        return f"sha256:{pin['sha256']}"
    if pin.get("md5"):
        return f"md5:{pin['md5']}"
    return None


@contextlib.contextmanager
def _locked(lock_file: Path):
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def record_pin(name: str, sha256: str, size: int, url: str | None, path: Path | None = None) -> dict:
    """Record the sha256 of a file that had no pinned hash (first download) and warn once."""
    path = path or pins_path()
    with _locked(path.with_name(f".{path.name}.lock")):
        data = json.loads(path.read_text()) if path.exists() else {"files": {}}
        files = data.setdefault("files", {})
        if pinned_hash(files.get(name)):  # another process pinned it meanwhile
            return files[name]
        pin = {"sha256": sha256, "bytes": size, "url": url,
               "source": f"recorded on first download {datetime.date.today().isoformat()}"}
        files[name] = pin
        data["files"] = dict(sorted(files.items()))
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(data, indent=1) + "\n")
    message = (f"{name}: no published checksum; recorded its sha256 {sha256} in {path}. "
               f"Commit that file so that every later download and import is verified against it.")
    warnings.warn(message, UserWarning, stacklevel=3)
    return pin


def file_hashes(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def _matches(known: str, sha: str, md5: str) -> bool:
    alg, value = known.split(":", 1)
    return value.lower() == (sha if alg == "sha256" else md5)


def _mismatch_message(what: str, name: str, known: str, sha: str, md5: str, pin: dict, pins: Path,
                      kind: str) -> str:
    got = sha if known.startswith("sha256") else md5
    return (f"{what}: {known.split(':')[0]} {got} differs from the value pinned for {name} in {pins} "
            f"({known.split(':', 1)[1]}; {pin.get('source', 'pinned')}). Nothing else was deleted. "
            f"If the file is a damaged or partial copy, delete it and rerun (or import a good copy with "
            f"`{import_hint(kind)}`); if the publisher really changed the file, check the new version, "
            f"then remove the {name!r} entry from {pins} so that its sha256 is recorded again.")


def verify_local(path: Path, name: str, kind: str, url: str | None = None) -> Fetched:
    """Check an existing file against its pin (recording a sha256 when none is pinned)."""
    pins_file = pins_path()
    pin = load_pins(pins_file).get(name, {})
    known = pinned_hash(pin)
    sha, md5 = file_hashes(path)
    if known is None:
        pin = record_pin(name, sha, path.stat().st_size, url, pins_file)
    elif not _matches(known, sha, md5):
        raise ChecksumError(_mismatch_message(str(path), name, known, sha, md5, pin, pins_file, kind))
    return Fetched(path, sha, md5, path.stat().st_size, url, pin)


# ---- download -------------------------------------------------------------------
def _quiet_pooch():
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    return logger, level


def fetch(remote: RemoteFile, cache_dir: str | Path, progress: bool = False, retries: int = 2,
          timeout: tuple[float, float] = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) -> Fetched:
    """Return the verified local copy of ``remote``, downloading it when needed."""
    import pooch
    import requests

    cache_dir = Path(cache_dir)
    target = cache_dir / remote.name
    with _locked(cache_dir / f".{remote.name}.lock"):
        if target.exists():
            return verify_local(target, remote.name, remote.kind)
        pins_file = pins_path()
        pin = load_pins(pins_file).get(remote.name, {})
        known = pinned_hash(pin)
        staging = cache_dir / f".download-{remote.name}"
        shutil.rmtree(staging, ignore_errors=True)  # leftovers of a killed download
        failures: list[str] = []
        mismatches: list[str] = []
        dead_hosts: set[str] = set()
        logger, level = _quiet_pooch()
        try:
            for url in remote.urls:
                host = urlsplit(url).netloc
                if host in dead_hosts:
                    failures.append(f"{url}: skipped, host {host} unreachable")
                    continue
                for attempt in range(1 + retries):
                    shutil.rmtree(staging, ignore_errors=True)
                    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
                    try:
                        if progress:
                            print(f"downloading {remote.name} from {url}", file=sys.stderr)
                        got = Path(pooch.retrieve(url, known_hash=known, fname=remote.name, path=staging,
                                                  downloader=downloader))
                    except requests.exceptions.HTTPError as exc:
                        status = exc.response.status_code if exc.response is not None else "?"
                        failures.append(f"{url}: HTTP {status}")
                        break
                    except requests.exceptions.ConnectionError as exc:
                        if not _read_timeout(exc):  # refused, DNS failure, connect timeout: host down
                            failures.append(f"{url}: cannot connect ({_short(exc)})")
                            dead_hosts.add(host)
                            break
                        failures.append(f"{url}: transfer stalled, attempt {attempt + 1} of {1 + retries}")
                        continue
                    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.Timeout,
                            requests.exceptions.ContentDecodingError) as exc:
                        # Cut mid-file: pooch already deleted its temporary file; restart.
                        failures.append(f"{url}: transfer interrupted, attempt {attempt + 1} "
                                        f"of {1 + retries} ({_short(exc)})")
                        continue
                    except requests.exceptions.RequestException as exc:
                        failures.append(f"{url}: {_short(exc)}")
                        break
                    except ValueError:  # pooch: hash of the downloaded file differs from the pin
                        mismatches.append(url)
                        failures.append(f"{url}: checksum differs from the pinned value")
                        break
                    make_readable(got)
                    os.replace(got, target)
                    shutil.rmtree(staging, ignore_errors=True)
                    sha, md5 = file_hashes(target)
                    if known is None:
                        pin = record_pin(remote.name, sha, target.stat().st_size, url, pins_file)
                    return Fetched(target, sha, md5, target.stat().st_size, url, pin)
        finally:
            logger.setLevel(level)
            shutil.rmtree(staging, ignore_errors=True)
    tried = "\n  ".join(failures)
    if mismatches:
        raise ChecksumError(
            f"{remote.name}: the file served by {', '.join(mismatches)} does not match the hash pinned in "
            f"{pins_file} ({known}; {pin.get('source', 'pinned')}); the download was discarded and "
            f"nothing else was deleted. Attempts:\n  {tried}\nIf the publisher changed the file, check "
            f"it, then remove the {remote.name!r} entry from {pins_file} so that its sha256 is recorded "
            f"again; or import a verified copy with `{import_hint(remote.kind)}`.")
    raise OfflineError(
        f"could not download {remote.name} (offline, or every host is down). URLs tried:\n  {tried}\n"
        f"Get the file from another machine or mirror, put it in a directory and run\n"
        f"  {import_hint(remote.kind)}\n"
        f"which verifies it against the pinned checksum and converts it; or add a working mirror to the "
        f"dataset's `mirrors` parameter.")


def make_readable(path: Path) -> None:
    """Temporary files are created 0600; give the cached copy the usual umask-based mode."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _read_timeout(exc: Exception) -> bool:
    """requests reports a read timeout in the middle of a body as a ConnectionError."""
    from urllib3.exceptions import ReadTimeoutError

    return bool(exc.args) and isinstance(exc.args[0], ReadTimeoutError)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 160 else text[:157] + "..."


# ---- local import ---------------------------------------------------------------
def import_file(remote: RemoteFile, source_dir: Path, cache_dir: Path) -> Fetched | None:
    """Verify a local copy of ``remote`` found in ``source_dir`` and copy it into the cache."""
    found = next((source_dir / n for n in (remote.name, *remote.aliases) if (source_dir / n).is_file()), None)
    if found is None:
        return None
    checked = verify_local(found, remote.name, remote.kind, url=f"file://{found.resolve()}")
    target = cache_dir / remote.name
    if not (target.exists() and target.resolve() == found.resolve()):
        with _locked(cache_dir / f".{remote.name}.lock"):
            with atomic_path(target) as tmp:
                shutil.copyfile(found, tmp)
                make_readable(tmp)
    return Fetched(target, checked.sha256, checked.md5, checked.bytes, None, checked.pin)


def import_command(suite, kind: str, source: str | Path, progress: bool = True) -> int:
    """``mdhorizon data import <kind> DIR``: verify local files, cache them, convert the datasets."""
    import importlib

    from benchmark.data.registry import get_kind, make_dataset

    try:
        spec = get_kind(kind)
    except KeyError as exc:
        raise DownloadError(str(exc.args[0])) from None
    module = importlib.import_module(spec.module)
    if not hasattr(module, "remote_files"):
        raise DownloadError(f"dataset kind {kind!r} is simulated, not downloaded; nothing to import")
    source = Path(source)
    if not source.is_dir():
        raise DownloadError(f"{source}: not a directory; give the directory holding the {kind} files")
    names = [d for d, e in suite.datasets.items() if e.kind == kind]
    # Which raw files to look for: those of the suite's datasets of this kind, or every file the kind knows.
    param_sets = [dict(suite.datasets[d].params) for d in names] or [module.DEFAULTS]
    imported: dict[str, Fetched] = {}
    for params in param_sets:
        cache = cache_dir_for(suite.dataset_dir("_"), kind, params)
        for remote in module.remote_files(params, all_files=not names):
            if remote.name not in imported:
                got = import_file(remote, source, cache)
                if got is not None:
                    imported[remote.name] = got
                    print(f"verified {got.path.name} (sha256 {got.sha256[:16]}...) -> {got.path}")
    if not imported:
        expected = sorted({r.name for p in param_sets for r in module.remote_files(p, all_files=True)})
        raise DownloadError(f"{source}: none of the {kind} files found; expected some of: {', '.join(expected)}")
    if not names:
        print(f"suite {suite.name!r} has no dataset of kind {kind!r}: the files are cached in "
              f"{cache_dir_for(suite.dataset_dir('_'), kind, param_sets[0])} and will be converted by "
              f"`mdhorizon data make <dataset> --suite paper` (or the paper workflow)")
    for name in names:
        params = dict(suite.datasets[name].params)
        if all(r.name in imported or (cache_dir_for(suite.dataset_dir(name), kind, params) / r.name).exists()
               for r in module.remote_files(params)):
            ds = make_dataset(suite.dataset_dir(name), name, kind, params,
                              seed=suite.datasets[name].seed, progress=progress)
            print(f"converted {name}: {ds.path} ({len(ds)} trajectories, checksum {ds.checksum[:16]})")
        else:
            print(f"{name}: not all of its files were imported; not converted")
    return 0


# ---- conversion helper ------------------------------------------------------------
def convert_once(out: str | Path, traj_name: str, convert) -> bool:
    """Run ``convert(partial_dir)`` into a temporary directory, then rename it to ``traj_name``.

    A trajectory already converted (its ``meta.json`` exists) is kept, so an
    interrupted conversion resumes at the first missing trajectory.
    """
    final = Path(out) / traj_name
    if (final / "meta.json").exists():
        return False
    partial = Path(out) / f".partial_{traj_name}"
    shutil.rmtree(partial, ignore_errors=True)
    convert(partial)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return True
