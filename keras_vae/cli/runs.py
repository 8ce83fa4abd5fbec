"""Run directories of ``keras-vae train``: checked, locked, resumed, never mixed.

A run directory (``--out``) holds a finished run's artefacts, or a run in
progress: its ``backup/`` checkpoint (see ``keras_vae.distribute.BackupAndRestore``)
and ``backup/settings.json``, the options that run was started with. This
module decides, before any heavy work, what a new ``train`` command does with
it:

- a new or empty directory: train;
- a checkpoint of the same settings: resume it;
- a checkpoint of other settings: refuse, naming the options that differ;
- a finished run: say so and change nothing (``--overwrite`` trains afresh);
- another live ``train`` writing to it: refuse (the lock file ``.lock``
  holds its process id; the lock of a process that no longer runs is stale
  and replaced).

Nothing here imports TensorFlow.
"""

import contextlib
import json
import os
import pathlib
import shutil
import socket
import tempfile
import time

LOCK_FILE = ".lock"
BACKUP_DIR = "backup"
SETTINGS_FILE = "settings.json"


class RunError(ValueError):
    """The run directory cannot be used as asked; the message says what to do."""


def check_writable(out, option="--out"):
    """Check, without creating anything, that ``out`` can be (or is) a directory this process writes to.

    Args:
        out: ``pathlib.Path`` of the output directory.
        option: how messages name it.

    Raises:
        RunError: ``out`` or one of its parents is a file, or the nearest
            existing directory is not writable.
    """
    out = pathlib.Path(out)
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            what = f"{option} {out}" if parent == out else f"{parent}, a parent of {option} {out},"
            raise RunError(f"{what} is a file, not a directory; choose another {option}.")
        if parent.exists():
            if not os.access(parent, os.W_OK | os.X_OK):
                raise RunError(f"cannot write to {parent} (permission denied); choose another {option}.")
            return


def make_dir(out, option="--out"):
    """Create ``out`` (and its parents) and check a file can be written in it.

    Raises:
        RunError: it cannot be created or written.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as err:
        raise RunError(f"cannot write to {out} ({err.strerror or err}); choose another {option}.") from None


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # It exists, owned by someone else.
        return True
    return True


@contextlib.contextmanager
def lock(out, say=print):
    """Hold ``out/.lock`` for the duration of a run.

    Args:
        out: the run directory (must exist).
        say: where to report a stale lock being replaced.

    Yields:
        The lock file's path.

    Raises:
        RunError: a live process on this host holds the lock, or a process on
            another host does (whose liveness cannot be checked).
    """
    path = out / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text() or "{}")
            except (OSError, json.JSONDecodeError):
                holder = {}
            pid, host = holder.get("pid"), holder.get("host")
            if host == me["host"] and isinstance(pid, int) and not _process_alive(pid):
                say(f"{out}: removed the stale lock of process {pid}, which no longer runs")
                path.unlink(missing_ok=True)
                continue
            who = f"process {pid} on {host}" if pid else "another process"
            hint = "" if host == me["host"] else f" If you are sure no run uses it, delete {path}."
            raise RunError(
                f"{out} is in use by another keras-vae train ({who}, started {holder.get('started', '?')}); "
                f"wait for it to finish or choose another --out.{hint}"
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    try:
        yield path
    finally:
        with contextlib.suppress(OSError, json.JSONDecodeError):
            if json.loads(path.read_text()).get("pid") == me["pid"]:
                path.unlink()


def _differences(saved, settings):
    keys = sorted(set(saved) | set(settings))
    return [f"{k}: {saved.get(k)!r} then, {settings.get(k)!r} now" for k in keys if saved.get(k) != settings.get(k)]


def inspect(out, settings, artefacts, overwrite=False):
    """What ``train`` would do with the run directory ``out`` (reads only).

    Args:
        out: ``pathlib.Path`` of the run directory.
        settings: dict of the options that define the run (JSON types).
        artefacts: file names a finished run holds (the first two mark it finished).
        overwrite: discard a finished run or a checkpoint and train afresh.

    Returns:
        ``"train"`` (start from epoch 1), ``"resume"`` (a checkpoint of the
        same settings exists), ``"complete"`` (a finished run: nothing to do)
        or ``"overwrite"`` (discard what is there, then train).

    Raises:
        RunError: a checkpoint of other settings (or of unknown ones), without ``overwrite``.
    """
    backup = out / BACKUP_DIR
    stamp = backup / SETTINGS_FILE
    if overwrite:
        return "overwrite"
    if backup.exists():
        saved = json.loads(stamp.read_text()) if stamp.exists() else None
        if saved is None:
            raise RunError(
                f"{backup} holds a checkpoint without a record of its settings; "
                "pass --overwrite to discard it, or choose another --out."
            )
        if saved != settings:
            raise RunError(
                f"{backup} holds the checkpoint of a run with other settings ("
                + "; ".join(_differences(saved, settings))
                + "). Run the same command as that run to resume it, pass --overwrite to discard it, "
                "or choose another --out."
            )
        return "resume"
    if all((out / name).exists() for name in artefacts[:2]):
        return "complete"
    return "train"


def complete_message(out, artefacts):
    """What ``train`` says of a finished run it leaves as it is."""
    return (
        f"{out} holds a finished run ({', '.join(artefacts[:2])}); nothing to do. "
        "Pass --overwrite to train it again from scratch, or choose another --out."
    )


def prepare(out, settings, artefacts, overwrite=False):
    """Make ``out`` ready for a run (call it holding :func:`lock`).

    Checks again what :func:`inspect` found (another run may have changed
    it), discards a previous run with ``overwrite``, and records the
    settings of a new run beside its checkpoint.

    Returns:
        The state :func:`inspect` returns, ``"overwrite"`` becoming ``"train"``.
    """
    state = inspect(out, settings, artefacts, overwrite)
    if state == "overwrite":
        for name in artefacts:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)
        state = "train"
    if state == "train":
        (out / BACKUP_DIR).mkdir(parents=True, exist_ok=True)
        write_json(out / BACKUP_DIR / SETTINGS_FILE, settings)
    return state


def write_json(path, data):
    """Write ``data`` as JSON to ``path`` atomically (a reader sees the old or the new file, never half)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def write_atomically(path, write):
    """Call ``write(tmp_path)`` then move the result to ``path`` (same suffix, so writers that check it work).

    Args:
        path: ``pathlib.Path`` of the final file.
        write: function writing a complete file at the path it is given.
    """
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def finish(out):
    """Remove the checkpoint of a run whose artefacts are all written."""
    shutil.rmtree(out / BACKUP_DIR, ignore_errors=True)
