"""Crash-safe writes: a kill at any instant leaves the old content or the new, never part.

Files are written beside their destination and renamed into place (``os.replace``, a
rename on one file system); folders are published the same way, the old one moved
aside first. Python's ``tempfile`` has no such "publish" step, so it is written here,
once, for run folders, tuning folders and exports. Temporary names carry the process
id, so that :func:`recover_replacements` can repair what a killed process left.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keras_resnet.utils.checks import check_bool, check_path


def write_text_atomic(path: str | os.PathLike, text: str) -> str:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename.

    A reader (or a rerun after kill -9) sees the old content or the new, never part.

    Args:
        path: The file to write (its folder must exist).
        text: The content, written as UTF-8.

    Returns:
        ``path`` as a string.

    Example:
        >>> import tempfile, os
        >>> p = write_text_atomic(os.path.join(tempfile.mkdtemp(), "a.txt"), "hi\\n")
        >>> open(p).read(), sorted(os.listdir(os.path.dirname(p)))
        ('hi\\n', ['a.txt'])
    """
    path = os.fspath(path)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any) -> str:
    """Write ``obj`` as indented, key-sorted JSON to ``path``, atomically.

    The project's one JSON writer for files a crash must not leave half-written
    (run folders, tuning folders, export metadata).

    Args:
        path: The ``.json`` file to write.
        obj: A JSON-serialisable object (other values are written with ``str``).

    Returns:
        ``path`` as a string.

    Example:
        >>> import tempfile, os
        >>> p = write_json_atomic(os.path.join(tempfile.mkdtemp(), "s.json"), {"b": 1, "a": 2})
        >>> read_json(p)
        {'a': 2, 'b': 1}
    """
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike, *, want_object: bool = False) -> Any:
    """Read a JSON file; a malformed or non-UTF-8 file raises ``ValueError`` naming it.

    Args:
        path: The file.
        want_object: Require a JSON object (a dict); anything else (``[]``, a number)
            raises ``ValueError`` naming the file.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "bad.json")
        >>> _ = open(p, "w").write("{oops")
        >>> try:
        ...     read_json(p)
        ... except ValueError as err:
        ...     print(str(err).replace(p, "FILE")[:33])
        FILE is not valid JSON (Expecting
        >>> _ = open(p, "w").write("[]")
        >>> read_json(p)
        []
        >>> try:
        ...     read_json(p, want_object=True)
        ... except ValueError as err:
        ...     print(str(err).replace(p, "FILE"))
        FILE holds a JSON list, not an object ({...}); fix or remove it.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); fix or remove it.") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err}); fix or remove it.") from None
    if want_object and not isinstance(data, dict):
        kind = "null" if data is None else type(data).__name__.replace("str", "string")
        raise ValueError(f"{path} holds a JSON {kind}, not an object ({{...}}); fix or remove it.")
    return data


def remove_path(path: Path) -> None:
    """Remove a file, a link or a folder tree, if it exists.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> (d / "sub").mkdir()
        >>> remove_path(d / "sub"), remove_path(d / "missing"), os.listdir(d)
        (None, None, [])
    """
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


# ".STEM.tmp-PID-TAG[.suffix]" / ".STEM.old-PID-TAG[.suffix]", as _atomic_path names them
_LEFTOVER = re.compile(
    r"^\.(?P<stem>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]{8}(?P<suffix>.*)$"
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_replacements(folder: str | os.PathLike, stem: str | None = None) -> list[str]:
    """Finish or undo the replacements and temporary files that a killed export left.

    An export writes ``.NAME.tmp-PID-TAG`` beside its destination and, replacing a
    folder, first moves the old one to ``.NAME.old-PID-TAG``. For every such entry
    whose process is gone: a temporary one is removed; an ``.old`` one is moved back
    if the destination is missing (the kill came between the two renames), else
    removed (the kill came after the new output was published).

    Args:
        folder: The folder holding the destinations.
        stem: Only entries for destinations with this stem (default: all).

    Returns:
        The destinations restored from their ``.old`` copies.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> (d / ".model.old-999999999-abcdef12").mkdir()  # a dead process, killed mid-swap
        >>> recover_replacements(d) == [str(d / "model")], sorted(os.listdir(d))
        (True, ['model'])
    """
    folder = Path(folder)
    restored = []
    if not folder.is_dir():
        return restored
    for entry in sorted(folder.iterdir()):
        match = _LEFTOVER.match(entry.name)
        if not match or (stem is not None and match["stem"] != stem):
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and _pid_alive(pid):
            continue  # an export in progress in another process
        dest = entry.with_name(match["stem"] + match["suffix"])
        if match["kind"] == "old" and not (dest.exists() or dest.is_symlink()):
            os.replace(entry, dest)
            restored.append(str(dest))
        else:
            remove_path(entry)
    return restored


@contextlib.contextmanager
def atomic_path(dest: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; move it to ``dest`` if the block succeeds.

    Python's ``tempfile`` lacks an atomic "publish a folder" step, so this is written
    by hand: the temporary path lives in the same folder (same file system, so the
    final ``os.replace`` is a rename) and is removed on any failure, interrupts too.
    Names carry the process id, so that ``recover_replacements`` can repair what
    a killed process left (run first, here).

    Args:
        dest: The file or folder to publish.
        overwrite: Replace an existing ``dest``.

    Example:
        >>> import tempfile
        >>> dest = Path(tempfile.mkdtemp()) / "out.txt"
        >>> with atomic_path(dest, overwrite=False) as tmp:
        ...     _ = tmp.write_text("done")
        >>> dest.read_text(), os.listdir(dest.parent)
        ('done', ['out.txt'])
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    recover_replacements(dest.parent, dest.stem)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # Keep the suffix: Keras and the TFLite writer insist on ".keras" / ".tflite".
    tmp = dest.with_name(f".{dest.stem}.tmp-{tag}{dest.suffix}")
    try:
        yield tmp
        if not (tmp.exists()):
            raise RuntimeError(f"Export wrote nothing to the temporary path {str(tmp)!r}")
        exists = dest.exists() or dest.is_symlink()
        if exists and not overwrite:
            raise FileExistsError(
                f"{str(dest)!r} appeared during the export; pass overwrite=True to "
                "replace it. Received: overwrite=False"
            )
        if not exists or (dest.is_file() and tmp.is_file()):
            os.replace(tmp, dest)  # atomic for files
        else:  # a folder: move the old one aside first, and back if the rename fails
            old = dest.with_name(f".{dest.stem}.old-{tag}{dest.suffix}")
            os.replace(dest, old)
            try:
                os.replace(tmp, dest)
            except BaseException:
                os.replace(old, dest)
                raise
            remove_path(old)
    finally:
        remove_path(tmp)


def check_destination(path: Any, name: str, overwrite: bool, suffix: str | None) -> Path:
    """The checked destination ``path``; it may exist only with ``overwrite=True``.

    Example:
        >>> check_destination("/tmp/no/such/model.tflite", "path", False, ".tflite").name
        'model.tflite'
    """
    check_bool("overwrite", overwrite)
    dest = check_path(name, path)
    if suffix is not None and dest.suffix != suffix:
        raise ValueError(f"`{name}` must end with '{suffix}'. Received: {name}={str(path)!r}")
    if dest.name in ("", ".", ".."):
        raise ValueError(f"`{name}` must name a file or folder. Received: {name}={str(path)!r}")
    if (dest.exists() or dest.is_symlink()) and not overwrite:
        raise FileExistsError(
            f"{str(dest)!r} already exists; pass overwrite=True (--overwrite) to replace it. "
            f"Received: {name}={str(path)!r}, overwrite=False"
        )
    return dest
