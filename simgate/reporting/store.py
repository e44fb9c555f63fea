"""Where a run's summary and verdict land, safe when several runs share one reports folder.

Every run writes into a folder of its own, ``<reports>/runs/<run id>/``, so two runs never write
the same file. When a run ends, its two files are also copied to ``<reports>/summary.json`` and
``<reports>/verdict.json`` (the most recently finished run; each file names its run) and
``<reports>/latest`` points at its folder. Every write goes to a uniquely named temporary file
that is renamed into place, so a reader sees a whole file or the previous one, never a mix.

At its start a run marks ``verdict.json`` "running" (never "promote"), so a run that is killed
before it can write anything leaves no earlier run's PASS behind under the run's name.
The oldest finished run folders beyond :data:`KEEP` are removed.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import struct
import tempfile
import time
from pathlib import Path

try:
    import fcntl  # Linux and the BSDs; elsewhere inode flags are not read
except ImportError:  # pragma: no cover
    fcntl = None

#: finished run folders kept (the newest)
KEEP = 20
#: seconds after which a folder still marked running belongs to a run that was killed
STALE = 7 * 24 * 3600


class ReportsError(OSError):
    """The reports folder cannot be written; the message says where and what to do."""


def strict_json(value):
    """``value`` with every NaN or infinity replaced by None: JSON has no such numbers, and a file
    with ``NaN`` in it is refused by strict readers (jq, JavaScript, most dashboards)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def write_json(path: Path, document: dict) -> None:
    """Atomically: a unique temporary name beside ``path``, fsync, rename."""
    text = json.dumps(strict_json(document), indent=1, sort_keys=True, allow_nan=False, default=str) + "\n"
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False, encoding="utf-8")
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)  # a report, readable like any file the run writes
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def check_writable(directory: Path, option: str = "--simgate-reports") -> None:
    """Fail before any episode runs when results could not be written at the end."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=directory, prefix=".write-check-", delete=True)
        probe.write(b"x")
        probe.flush()
        probe.close()
    except OSError as exc:
        raise ReportsError(f"reports folder {directory} cannot be written ({exc.strerror or exc}); "
                           f"fix its permissions or free space, or pass {option} DIR") from None


#: the files a run replaces at its end, where readers (CI, dashboards, people) look
REPLACED = ("verdict.json", "summary.json")
#: Linux's FS_IOC_GETFLAGS and the inode flags that forbid replacing a file (chattr +i, +a)
_GETFLAGS, _IMMUTABLE, _APPEND = 0x80086601, 0x10, 0x20


def check_replaceable(reports: Path, option: str = "--simgate-reports") -> None:
    """The files the run replaces at its end, and ``latest``, can be replaced: otherwise the run
    would end with an earlier run's verdict (perhaps PASS) still where a reader looks."""
    for name in REPLACED:
        problem = _unreplaceable(reports / name)
        if problem:
            raise ReportsError(f"{reports / name} {problem}, so this run could not replace it and an earlier run's "
                               f"file would stay in its place; {_fix(problem, reports / name)}, or pass {option} DIR")
    latest = reports / "latest"
    if latest.is_dir() and not latest.is_symlink():
        raise ReportsError(f"{latest} is a real folder, not the link to the newest run that simgate keeps there, so "
                           "this run could not replace it and the earlier files in it would stay; move or remove it "
                           f"(rm -r {latest}), or pass {option} DIR")


def _unreplaceable(path: Path) -> str | None:
    if path.is_dir() and not path.is_symlink():
        return "is a folder, not a file"
    flags = _inode_flags(path)
    if flags & _IMMUTABLE:
        return "is immutable (chattr +i)"
    if flags & _APPEND:
        return "is append-only (chattr +a)"
    return None


def _fix(problem: str, path: Path) -> str:
    if "chattr +i" in problem:
        return f"clear the flag (chattr -i {path})"
    if "chattr +a" in problem:
        return f"clear the flag (chattr -a {path})"
    return f"move or remove it (rm -r {path})"


def _inode_flags(path: Path) -> int:
    """The file's inode flags; 0 where they cannot be read (not Linux, a filesystem without them,
    a symlink: replacing a symlink replaces the link, whatever its target's flags)."""
    if fcntl is None:  # not Linux
        return 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(fd, _GETFLAGS, bytes(8))[:4])[0]  # the kernel writes an int
    except OSError:
        return 0
    finally:
        os.close(fd)


class RunStore:
    """The folders and files of one run."""

    def __init__(self, reports: Path, run_id: str | None = None):
        self.reports = Path(reports)
        self.id = run_id or f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}"
        self.folder = self.reports / "runs" / self.id

    def start(self, cases: int) -> None:
        marker = {"promote": False, "decision": "RUNNING", "complete": False, "run": self.id,
                  "note": f"run {self.id} started with {cases} case(s) and has not finished; "
                          "if nothing else replaces this file, it was killed"}
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.folder / "verdict.json", marker)
        write_json(self.reports / "verdict.json", marker)

    def refuse(self, message: str, decision: str = "ERROR") -> None:
        """The run stopped before any case ran (its input was refused: ERROR; the pinned study not
        matched: INVALID)."""
        if not self.reports.is_dir():
            return  # nothing earlier to contradict
        document = {"promote": False, "decision": decision, "complete": False, "run": self.id, "error": message}
        write_json(self.reports / "verdict.json", document)

    def finish(self, summary: dict, verdict: dict) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.folder / "summary.json", summary)
        write_json(self.folder / "verdict.json", verdict)
        write_json(self.reports / "summary.json", summary)
        write_json(self.reports / "verdict.json", verdict)
        self._link_latest()
        self._prune()
        return self.folder

    def _link_latest(self) -> None:
        link = self.reports / "latest"
        tmp = self.reports / f".latest-{self.id}"
        try:
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(Path("runs") / self.id, target_is_directory=True)
            os.replace(tmp, link)
        except OSError:  # no symlinks here (some filesystems): the copies above still tell
            tmp.unlink(missing_ok=True)
            if link.is_dir() and not link.is_symlink():  # made since configure time: its files are stale
                raise ReportsError(f"{link} is a real folder, so it still holds an earlier run's files; "
                                   f"remove it (rm -r {link})") from None

    def _prune(self) -> None:
        runs = self.reports / "runs"
        finished = []
        for folder in sorted(runs.iterdir()) if runs.is_dir() else []:
            try:
                state = json.loads((folder / "verdict.json").read_text(encoding="utf-8")).get("decision")
            except (OSError, ValueError):
                continue  # another run's folder being created: never touch it
            stale = time.time() - folder.stat().st_mtime > STALE  # a run killed long ago
            if (state != "RUNNING" or stale) and folder.name != self.id:
                finished.append(folder)
        for folder in finished[:-KEEP] if len(finished) > KEEP else []:
            shutil.rmtree(folder, ignore_errors=True)
