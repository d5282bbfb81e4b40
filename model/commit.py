"""Outputs all or nothing: the one helper that mapping, evaluation (and later adaptation) write through.

A run opens an :class:`OutputCommit` over the destinations it will write,
before any long work:

1. every destination's folder is checked (it exists and can be written), so a
   wrong folder is reported before inference, naming the output;
2. every destination is locked for the run (a lock file per destination in
   :func:`locks_dir`, held with an OS lock that dies with the process): a
   second run on the same output paths is refused with a message while the
   first one runs; once it has finished, the last run wins, whole;
3. scratch folders and ``.partial`` files that killed runs left behind are
   cleaned (rolled back, or rolled forward when the dead run had already
   started its final renames);
4. the run gets its own scratch folder under :func:`scratch_root`, held by an
   OS lock (on ``<folder>.lock`` beside it) while it lives.

Outputs are written as ``<destination>.partial`` (same folder, so the rename
is atomic) and :meth:`OutputCommit.commit` renames them all at the end, after
a last cancel check. Before renaming it writes a journal of the renames, so a
run killed between two renames is completed by the next run's cleaning: no
set of outputs is left half old, half new. On failure or cancel, every partial
and the scratch folder are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .errors import CancelledError, InputDataError

PARTIAL_SUFFIX = ".partial"
SCRATCH_DIR_NAME = "landslide_mapper_runs"
LOCKS_DIR_NAME = "landslide_mapper_locks"
_MANIFEST = "partials.json"
_JOURNAL = "commit.json"


def _per_user(name: str) -> str:
    """``name`` made private to this user where the temp folder is shared (``/tmp``)."""
    return f"{name}_{os.getuid()}" if hasattr(os, "getuid") else name


def scratch_root(work_dir: Optional[str] = None) -> str:
    """The folder holding every run's scratch folder (under ``work_dir`` or the system temp folder)."""
    return os.path.join(work_dir or tempfile.gettempdir(), _per_user(SCRATCH_DIR_NAME))


def locks_dir() -> str:
    """One folder of destination locks for every run of this user on this machine, whatever its work folder."""
    return os.path.join(tempfile.gettempdir(), _per_user(LOCKS_DIR_NAME))


class FileLock:
    """An exclusive, non-blocking OS lock on a file; released by the OS when the process dies.

    ``flock`` on POSIX (per open file, so two runs in one process exclude each
    other too), ``msvcrt.locking`` on Windows. On POSIX the holder may remove
    the file (:meth:`release` with ``remove``): a lock taken on a file that
    was removed meanwhile is detected (the path no longer names the locked
    file) and taken again on a fresh file, so lock files do not pile up.
    """

    def __init__(self, path: str):
        self.path = path
        self._handle = None

    def acquire(self) -> bool:
        """Take the lock; False when another holder has it.

        Raises:
            InputDataError: The lock file cannot be created.
        """
        for _ in range(10):
            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                handle = open(self.path, "a+b")
            except OSError as exc:
                raise InputDataError(f"Cannot create the lock file {self.path}: {exc.strerror or exc}.") from exc
            try:
                if os.name == "nt":  # pragma: no cover - exercised on Windows only
                    import msvcrt

                    handle.seek(0)
                    msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                else:
                    import fcntl

                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
            if os.name == "nt" or self._still_named(handle):
                self._handle = handle
                return True
            handle.close()  # its holder removed it between our open and our lock: take the new one
        return False

    def _still_named(self, handle) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino
        except OSError:
            return False

    def release(self, remove: bool = False) -> None:
        """Give the lock back (closing the file releases it); ``remove`` deletes the lock file first (POSIX)."""
        if self._handle is not None:
            if remove and os.name != "nt":
                try:
                    os.remove(self.path)
                except OSError:
                    pass
            try:
                if os.name == "nt":  # pragma: no cover
                    import msvcrt

                    self._handle.seek(0)
                    msvcrt.locking(self._handle.fileno(), msvcrt.LK_UNLCK, 1)
            except OSError:
                pass
            self._handle.close()
            self._handle = None


def destination_lock(destination: str) -> FileLock:
    """The lock of one output path (same file for every spelling of the path)."""
    key = os.path.normcase(os.path.realpath(os.path.abspath(destination)))
    return FileLock(os.path.join(locks_dir(), hashlib.sha1(key.encode("utf-8")).hexdigest() + ".lock"))


def remove_file(path: Optional[str]) -> None:
    """Remove a file GDAL or Python wrote, if it exists."""
    if path and os.path.lexists(path):
        try:
            os.remove(path)
        except IsADirectoryError:
            shutil.rmtree(path, ignore_errors=True)
        except FileNotFoundError:
            pass


def check_destination(what: str, destination: str) -> None:
    """Refuse an output whose folder is missing or read-only, or that names a folder, naming the output."""
    folder = os.path.dirname(os.path.abspath(destination))
    if os.path.isdir(destination):
        raise InputDataError(f"The {what} {destination} is a folder: give a file name.")
    if not os.path.isdir(folder):
        raise InputDataError(f"The folder of the {what} does not exist: {folder}. Create it or choose another one.")
    probe = os.path.join(folder, f".landslide_mapper_write_test_{uuid.uuid4().hex}")
    try:
        with open(probe, "wb"):
            pass
    except OSError as exc:
        raise InputDataError(f"The {what} cannot be written to {folder}: {exc.strerror or exc}.") from exc
    finally:
        remove_file(probe)
    if os.path.exists(destination) and not os.access(destination, os.W_OK):
        raise InputDataError(f"The {what} {destination} exists and is read-only.")


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _write_json(path: str, data) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


ORPHAN_AGE_S = 24 * 3600
"""A scratch folder without its lock file (a run killed while creating it) is removed after this age."""


def clean_stale_runs(root: str, held: Sequence[str] = ()) -> List[str]:
    """Remove the scratch folders (and ``.partial`` files) of runs that died; return the folders removed.

    Each run's folder ``<root>/<name>`` has its lock file ``<root>/<name>.lock``,
    locked before the folder is made and for as long as the run lives; a run
    is dead when its lock can be taken. A dead run that had written its rename
    journal is completed (its partials were all finished); otherwise its
    partials are removed. Destinations locked by a live run are left alone
    (that run cleans them itself), except ``held``: those this caller has locked.
    """
    removed: List[str] = []
    if not os.path.isdir(root):
        return removed
    names = sorted(os.listdir(root))
    for name in names:
        path = os.path.join(root, name)
        if name.endswith(".lock"):
            owner = FileLock(path)
            try:
                if not owner.acquire():
                    continue  # a live run
            except InputDataError:
                continue  # not ours to clean
            settled = True
            try:
                folder = path[: -len(".lock")]
                if os.path.isdir(folder):
                    try:
                        settled = _settle(folder, held)
                    except OSError:  # an output is open elsewhere: try again next time
                        settled = False
                    if settled:
                        shutil.rmtree(folder, ignore_errors=True)
                        removed.append(folder)
            finally:
                owner.release(remove=settled)  # an unsettled run keeps its lock file for the next cleaner
            if settled and os.name == "nt":  # pragma: no cover - Windows removes it once closed
                try:
                    remove_file(path)
                except OSError:
                    pass
        elif os.path.isdir(path) and name + ".lock" not in names:
            try:
                orphan = time.time() - os.path.getmtime(path) > ORPHAN_AGE_S
            except OSError:
                orphan = False
            if orphan:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _settle(folder: str, held: Sequence[str]) -> bool:
    """Roll a dead run's outputs forward (journal) or back (manifest); False when a destination is busy."""
    journal = _read_json(os.path.join(folder, _JOURNAL))
    pairs: List[Tuple[str, Optional[str]]] = []
    if isinstance(journal, list):
        pairs = [(partial, final) for partial, final in journal]
    else:
        manifest = _read_json(os.path.join(folder, _MANIFEST)) or []
        pairs = [(partial, None) for partial in manifest]
    held_keys = {os.path.normcase(os.path.realpath(os.path.abspath(path))) for path in held}
    locks = []
    try:
        for partial, _ in pairs:
            destination = partial[: -len(PARTIAL_SUFFIX)]
            if os.path.normcase(os.path.realpath(os.path.abspath(destination))) in held_keys:
                continue
            lock = destination_lock(destination)
            try:
                if not lock.acquire():
                    return False
            except InputDataError:
                return False
            locks.append(lock)
        for partial, final in pairs:
            if final is not None and os.path.exists(partial):
                os.replace(partial, final)
            else:
                remove_file(partial)
        return True
    finally:
        for lock in locks:
            lock.release(remove=True)


class OutputCommit:
    """Scratch folder, ``.partial`` files and the final renames of one run (see the module docstring).

    Use as a context manager::

        with OutputCommit([("probability raster", path)], work_dir, is_cancelled) as outputs:
            scratch = outputs.scratch_path("probability.tif")
            ...
            partial = outputs.partial_path(path)   # write the finished file here
            outputs.commit()                       # every partial gets its final name

    Args:
        destinations: ``(what, path)`` of every output the run may write;
            ``None`` paths are skipped. ``what`` names the output in messages.
        work_dir: Folder under which the scratch folders live (default: the
            system temp folder).
        is_cancelled: Checked by :meth:`raise_if_cancelled` and before the renames.
        prefix: Start of the scratch folder's name.

    Raises:
        InputDataError: A destination's folder is missing or read-only, or
            another run is writing one of the destinations.
    """

    def __init__(self, destinations: Sequence[Tuple[str, Optional[str]]], work_dir: Optional[str] = None,
                 is_cancelled: Callable[[], bool] = lambda: False, prefix: str = "run"):
        self.destinations = [(what, path) for what, path in destinations if path]
        self.root = scratch_root(work_dir)
        self.is_cancelled = is_cancelled
        self.prefix = prefix
        self.dir: Optional[str] = None
        self.committed = False
        self._locks: List[FileLock] = []
        self._owner: Optional[FileLock] = None
        self._partials: List[str] = []
        self._keep_for_next_run = False

    # ------------------------------------------------------------------ opening

    def __enter__(self) -> "OutputCommit":
        try:
            self._open()
        except BaseException:
            self._close()
            raise
        return self

    def _open(self) -> None:
        seen = set()
        for what, path in self.destinations:
            key = os.path.normcase(os.path.realpath(os.path.abspath(path)))
            if key in seen:
                raise InputDataError(f"Two outputs of this run are the same file ({path}): give each its own name.")
            seen.add(key)
            check_destination(what, path)
        for what, path in self.destinations:
            lock = destination_lock(path)
            if not lock.acquire():
                raise InputDataError(
                    f"Another run is writing the {what} {path}: wait until it has finished, or choose another "
                    "output name.")
            self._locks.append(lock)
        clean_stale_runs(self.root, held=[path for _, path in self.destinations])
        folder = os.path.join(self.root, f"{self.prefix}_{uuid.uuid4().hex[:12]}")
        for attempt in range(3):  # another run may remove the empty root in between
            owner = FileLock(folder + ".lock")  # locked before the folder exists: never taken for a dead run's
            try:
                if not owner.acquire():  # pragma: no cover - a fresh name nobody else knows
                    raise InputDataError(f"Cannot lock the scratch folder {folder}.")
                self._owner = owner
                os.mkdir(folder)
                break
            except FileNotFoundError:
                owner.release()
                self._owner = None
                if attempt == 2:
                    raise
        self.dir = folder

    # ------------------------------------------------------------------ during the run

    def scratch_path(self, name: str) -> str:
        """A path in the run's scratch folder (removed at the end, whatever happens)."""
        assert self.dir is not None, "use OutputCommit as a context manager"
        return os.path.join(self.dir, name)

    def partial_path(self, destination: str) -> str:
        """Where to write the finished ``destination`` before :meth:`commit` gives it its name.

        The partial is recorded first, so that a later run removes it if this
        one is killed; a partial a killed run left there is removed now.
        """
        assert self.dir is not None, "use OutputCommit as a context manager"
        if destination not in [path for _, path in self.destinations]:
            raise ValueError(f"{destination} was not declared as an output of this run.")
        partial = destination + PARTIAL_SUFFIX
        if partial not in self._partials:
            self._partials.append(partial)
            _write_json(os.path.join(self.dir, _MANIFEST), self._partials)
        remove_file(partial)
        return partial

    def raise_if_cancelled(self) -> None:
        """Raise :class:`CancelledError` once the user has cancelled."""
        if self.is_cancelled():
            raise CancelledError("Cancelled by the user; no output was written.")

    def commit(self) -> Dict[str, str]:
        """Give every partial its final name; return ``{destination: destination}`` of those written.

        Raises:
            CancelledError: Cancelled before the renames (nothing renamed).
            InputDataError: A partial is missing (its writer failed silently).
        """
        self.raise_if_cancelled()
        assert self.dir is not None, "use OutputCommit as a context manager"
        for partial in self._partials:
            if not os.path.exists(partial):
                raise InputDataError(f"{partial[: -len(PARTIAL_SUFFIX)]} was not written completely.")
        pairs = [(partial, partial[: -len(PARTIAL_SUFFIX)]) for partial in self._partials]
        journal = os.path.join(self.dir, _JOURNAL)
        _write_json(journal, pairs)  # from here on, a run killed mid-way is completed by the next run
        for index, (partial, final) in enumerate(pairs):
            try:
                os.replace(partial, final)
            except OSError as exc:
                if index > 0:  # some outputs are new already: keep journal and partials for the next run to finish
                    self._keep_for_next_run = True
                raise InputDataError(
                    f"Cannot give {final} its name: {exc.strerror or exc}. Is it open elsewhere? "
                    + ("The next run completes the outputs." if index > 0 else "No output was changed.")) from exc
        remove_file(journal)
        self.committed = True
        self._partials = []
        return {final: final for _, final in pairs}

    # ------------------------------------------------------------------ closing

    def __exit__(self, *exc_info) -> None:
        self._close()

    def _close(self) -> None:
        if self._keep_for_next_run:  # a half-done commit: its journal and partials stay for clean_stale_runs
            self.dir = None
        if not self.committed and not self._keep_for_next_run:
            for partial in self._partials:
                remove_file(partial)
            self._partials = []
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if self._owner is not None:
            self._owner.release(remove=not self._keep_for_next_run)  # removed while still held (POSIX)
            if os.name == "nt" and not self._keep_for_next_run:  # pragma: no cover - Windows: once closed
                try:
                    remove_file(self._owner.path)
                except OSError:
                    pass  # a later run's cleaning removes it
            self._owner = None
            try:
                os.rmdir(self.root)  # only when no other run's folder is in it
            except OSError:
                pass
        for lock in self._locks:
            lock.release(remove=True)
        self._locks = []
