"""One run folder's life: check, lock, prepare (new / resume / refuse), finish.

A run folder holds ``config.json`` (what was asked, written first), ``data_info.json``,
``history.csv``, ``tensorboard/``, ``backup/`` (the resume state), ``best.keras``,
``model.keras``, ``trained.json`` (training is over; removed when the run finishes),
``curves.png``, ``saved_model/`` and, written last, ``summary.json``. Every JSON file
is written atomically (temporary file + rename), so a kill at any instant leaves the
old or the new content, never half of it. While a run is in progress the folder holds
``.lock``, an OS file lock (``fcntl.flock``) naming the process that holds it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import json
import os
import shutil
from pathlib import Path
from typing import Any

from keras_resnet.utils.atomic import read_json, recover_replacements, write_json_atomic

__all__ = [
    "RUN_FILES",
    "RunDir",
    "RunFolderBusyError",
    "check_writable",
    "spec_differences",
]

RUN_FILES: tuple[str, ...] = (
    "config.json",
    "data_info.json",
    "history.csv",
    "tensorboard",
    "backup",
    "best.keras",
    "model.keras",
    "trained.json",
    "curves.png",
    "saved_model",
    "summary.json",
)
LOCK_FILE = ".lock"
# What a run writes inside its folders (paths relative to the folder, fnmatch patterns;
# ".*" covers the temporary files of the atomic writers). --overwrite deletes a folder
# only when everything in it matches: a file of the user's there is kept, and named.
RUN_FOLDER_CONTENTS: dict[str, tuple[str, ...]] = {
    "backup": ("*.json", "*.weights.h5", ".*"),
    "tensorboard": ("*/events.out.tfevents.*", "*/.*"),
    "saved_model": (
        "saved_model.pb",
        "fingerprint.pb",
        "keras_resnet_export.json",
        "assets/*",
        "variables/variables.*",
        ".*",
    ),
}


class RunFolderBusyError(FileExistsError):
    """Another live process holds the run folder's lock.

    Example:
        >>> issubclass(RunFolderBusyError, FileExistsError)
        True
    """


def spec_differences(old: Any, new: Any) -> list[str]:
    """The fields that differ between two run descriptions, nested keys dotted (a key
    missing on one side counts as None).

    Example:
        >>> spec_differences({"a": 1, "c": {"d": 2}}, {"a": 1, "c": {"d": 3}})
        ['c.d: 2 -> 3']
    """
    diffs = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if isinstance(old.get(key), dict) and isinstance(new.get(key), dict):
                diffs += [f"{key}.{d}" for d in spec_differences(old[key], new[key])]
            else:
                diffs.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return diffs


def check_writable(path: str | os.PathLike, name: str = "output_dir") -> str:
    """Check, before any heavy work, that ``path`` is (or can become) a writable folder.

    Args:
        path: The folder.
        name: The argument name for the messages.

    Returns:
        The absolute path.

    Raises:
        ValueError: Empty path, or a path that is, or lies below, a regular file.
        PermissionError: The folder (or the existing folder it would go in) cannot be
            written.

    Example:
        >>> import tempfile
        >>> parent = tempfile.mkdtemp()
        >>> check_writable(os.path.join(parent, "new", "run")) == f"{parent}/new/run"
        True
        >>> check_writable("")
        Traceback (most recent call last):
        ...
        ValueError: `output_dir` must name a folder. Received: output_dir=''
    """
    if isinstance(path, str) and not path.strip():
        raise ValueError(f"`{name}` must name a folder. Received: {name}={path!r}")
    full = os.path.abspath(os.fspath(path))
    probe = full
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        where = "is" if probe == full else "lies below"
        raise ValueError(
            f"`{name}` {where} a regular file ({probe}); a run folder must be a folder. "
            f"Received: {name}={os.fspath(path)!r}"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise PermissionError(
            f"`{name}` cannot be written: no write permission on {probe}. "
            f"Received: {name}={os.fspath(path)!r}"
        )
    return full


class RunDir:
    """A run folder: refuses a different run, resumes the same one, finishes it once.

    Args:
        path: The folder (created when the run starts).
        run: The run description; ``config.json`` stores it under ``"run"`` and a
            later run with a different description is refused.
        overwrite: Delete the run files (not other files) and start afresh.

    Example:
        >>> import tempfile
        >>> with RunDir(tempfile.mkdtemp() + "/run", {"model": "_tiny"}) as rd:
        ...     rd.prepare()
        'new'
    """

    def __init__(
        self, path: str | os.PathLike, run: dict[str, Any], *, overwrite: bool = False
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"`output_dir` must be a path. Received: output_dir={path!r}")
        self.path = os.fspath(path)
        check_writable(self.path)
        self.run = json.loads(json.dumps(run))  # what config.json will read back
        self.overwrite = bool(overwrite)
        self._lock_fd: int | None = None
        self._made = False  # lock() created the folder: unlock() removes it while empty

    def file(self, name: str) -> str:
        """The path of ``name`` inside the run folder."""
        return os.path.join(self.path, name)

    # ------------------------------------------------------------------- lock
    def lock(self) -> RunDir:
        """Take the folder's OS lock for this process (refused if a live process holds it).

        The lock dies with its process, so a lock left by a killed run is taken over.

        Raises:
            RunFolderBusyError: Another process is running in this folder (its pid named).
        """
        if self._lock_fd is not None:
            return self
        self._made = not os.path.isdir(self.path)
        os.makedirs(self.path, exist_ok=True)
        path = self.file(LOCK_FILE)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                owner = "unknown"
                with contextlib.suppress(OSError):
                    owner = Path(path).read_text(encoding="utf-8").strip() or owner
                raise RunFolderBusyError(
                    f"run folder {self.path} is in use by another run (process {owner}); "
                    "wait for it to end, stop it, or use another output folder."
                ) from None
            # The holder before us may have removed the file after we opened it: a lock
            # on an unlinked file guards nothing, so try again on the current one.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        return self

    def unlock(self) -> None:
        """Release the lock (and remove ``.lock``); safe to call twice.

        A folder that :meth:`lock` created and nothing was written to (a run refused
        before it started) is removed too."""
        if self._lock_fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.file(LOCK_FILE))
        os.close(self._lock_fd)
        self._lock_fd = None
        if self._made:
            with contextlib.suppress(OSError):  # not empty: the run wrote there
                os.rmdir(self.path)

    def __enter__(self) -> RunDir:
        return self.lock()

    def __exit__(self, *exc: Any) -> None:
        self.unlock()

    # ---------------------------------------------------------------- prepare
    def prepare(self, *, check_only: bool = False) -> str:
        """Decide what this run does here: ``"new"``, ``"resume"``, ``"trained"`` or
        ``"finished"``; with ``overwrite``, delete the run files first.

        ``"trained"``: training ended but the run did not finish (a kill before
        ``summary.json``): only the remaining steps are done.

        Args:
            check_only: Decide and raise only; create or delete nothing (what the
                non-chief workers of a multi-worker run do with the chief's folder).

        Raises:
            FileExistsError: The folder holds a different run, or run files without a
                ``config.json``, and not ``overwrite``.
        """
        if check_only and (self.overwrite or not os.path.isdir(self.path)):
            return "new"
        if not check_only:
            os.makedirs(self.path, exist_ok=True)
            recover_replacements(self.path)
        if self.overwrite:
            present = [n for n in RUN_FILES if os.path.lexists(self.file(n))]
            if present and not self._holds_a_run():
                # Only a run's config.json shows that these names were written by a run:
                # without it they are the user's own files, and --overwrite keeps them.
                raise FileExistsError(
                    f"`output_dir` {self.path!r} holds {', '.join(sorted(present))} but no "
                    "run's config.json: they are not a run's files, so --overwrite does not "
                    "delete them. Use another output folder, or remove them yourself."
                )
            foreign = [f for n in present for f in _foreign_files(self.path, n)]
            if foreign:
                more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
                raise FileExistsError(
                    f"`output_dir` {self.path!r} holds files a run does not write: "
                    f"{', '.join(foreign[:5])}{more}. --overwrite deletes only run files: "
                    "move these elsewhere, or use another output folder."
                )
            for name in present:
                path = self.file(name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                elif os.path.lexists(path):
                    os.remove(path)
            return "new"
        if os.path.isfile(self.file("config.json")):
            # A key absent on one side equals None on the other: a field added to the
            # configs since (at its None default) does not make an older run another one.
            diffs = spec_differences(self.config().get("run", {}), self.run)
            if diffs:
                raise FileExistsError(
                    f"`output_dir` {self.path!r} holds a different run ({'; '.join(diffs[:5])})."
                    " Use another output folder, or overwrite=True (--overwrite) to replace it."
                )
            if os.path.isfile(self.file("summary.json")):
                return "finished"
            return "trained" if os.path.isfile(self.file("trained.json")) else "resume"
        leftovers = [n for n in os.listdir(self.path) if n in RUN_FILES]
        if leftovers:
            raise FileExistsError(
                f"`output_dir` {self.path!r} holds run files ({', '.join(sorted(leftovers))}) "
                "but no config.json. Use another output folder, or overwrite=True (--overwrite)."
            )
        return "new"

    def _holds_a_run(self) -> bool:
        """Whether ``config.json`` is a run's (a JSON object with a ``"run"`` object)."""
        try:
            data = read_json(self.file("config.json"))
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and isinstance(data.get("run"), dict)

    # --------------------------------------------------------------- contents
    def config(self) -> dict[str, Any]:
        """``config.json`` (``{"run": ..., "resolved": ...}``)."""
        data = read_json(self.file("config.json"))
        if not isinstance(data, dict):
            raise ValueError(f"{self.file('config.json')} must hold a JSON object.")
        return data

    def start(self, resolved: dict[str, Any], data_info: dict[str, Any]) -> None:
        """Write ``config.json`` (the run and its resolved settings) and ``data_info.json``."""
        write_json_atomic(self.file("config.json"), {"run": self.run, "resolved": resolved})
        write_json_atomic(self.file("data_info.json"), data_info)

    def history(self) -> list[dict[str, float]]:
        """The epochs recorded in ``history.csv`` so far."""
        from keras_resnet.training.callbacks import read_history

        return read_history(self.file("history.csv"))

    def mark_trained(self, stats: dict[str, Any]) -> None:
        """Record that training is over (``trained.json``), after ``model.keras`` is saved."""
        write_json_atomic(self.file("trained.json"), stats)
        shutil.rmtree(self.file("backup"), ignore_errors=True)

    def trained(self) -> dict[str, Any]:
        """What :meth:`mark_trained` recorded."""
        return read_json(self.file("trained.json"))

    def finish(self, summary: dict[str, Any]) -> None:
        """Write ``summary.json`` (the run is finished) and drop ``trained.json``."""
        write_json_atomic(self.file("summary.json"), summary)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.file("trained.json"))

    def summary(self) -> dict[str, Any]:
        """``summary.json`` of a finished run."""
        return read_json(self.file("summary.json"))


def _foreign_files(run: str, name: str) -> list[str]:
    """The paths below the run folder ``name`` that a run does not write there."""
    folder = os.path.join(run, name)
    patterns = RUN_FOLDER_CONTENTS.get(name, ())
    if not os.path.isdir(folder) or os.path.islink(folder):
        return []
    found = []
    for root, _, files in os.walk(folder):
        for entry in files:  # an empty folder of the user's holds nothing to lose
            relative = os.path.relpath(os.path.join(root, entry), folder)
            depth = relative.count(os.sep)  # a pattern matches at its own depth only
            if not any(fnmatch.fnmatch(relative, p) and p.count("/") == depth for p in patterns):
                found.append(os.path.join(name, relative))
    return sorted(found)
