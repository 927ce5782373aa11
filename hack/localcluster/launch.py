"""Turns into one container process of the process kubelet.

Run as ``python3 -I -S launch.py SPEC_JSON`` by the kubelet, in a fresh
session. When SPEC asks for mounts, it enters a private mount namespace
(needs root) and bind-mounts each source file or directory at its target path
- so every container has its own ``/dev/termination-log`` although they all
share the host's filesystem. A target whose parent directories are missing is
created on a private tmpfs copy of its nearest existing ancestor (each entry of
the ancestor is bind-mounted back), so the host's filesystem is never changed.
Then it changes to the working directory and execs the command, keeping its
PID. Failures before the exec are written to the status file descriptor and
end the process with exit code 128, which the kubelet reports like a
container runtime's ``StartError``. A successful exec closes that descriptor.

Standard library only, and no imports from this package: it starts often.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import sys

CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    """The container could not be prepared."""


def _encode(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    rc = _libc.mount(
        _encode(source), _encode(target), _encode(fstype), ctypes.c_ulong(flags), _encode(data)
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise SetupError(f"mount {source or fstype} on {target}: {os.strerror(err)}")


def _enter_private_mount_namespace() -> None:
    if _libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise SetupError(f"unshare(CLONE_NEWNS): {os.strerror(err)}")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def _nearest_existing(path: str) -> tuple[str, list[str]]:
    missing: list[str] = []
    current = path
    while not os.path.lexists(current):
        current, name = os.path.split(current)
        missing.insert(0, name)
    return os.path.realpath(current), missing


def _replicate(directory: str, shadow: str) -> None:
    """Mount a tmpfs at ``shadow`` holding every entry of ``directory``, bound back in."""
    _mount("tmpfs", shadow, "tmpfs", 0, f"mode={stat.S_IMODE(os.stat(directory).st_mode):o}")
    for entry in os.scandir(directory):
        copy = os.path.join(shadow, entry.name)
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), copy)
            continue
        if entry.is_dir(follow_symlinks=False):
            os.mkdir(copy)
        else:
            open(copy, "wb").close()
        _mount(entry.path, copy, None, MS_BIND | MS_REC)


def _create(base: str, names: list[str], is_dir: bool) -> str:
    path = base
    for name in names[:-1]:
        path = os.path.join(path, name)
        os.makedirs(path, exist_ok=True)
    path = os.path.join(path, names[-1])
    if is_dir:
        os.makedirs(path, exist_ok=True)
    else:
        open(path, "ab").close()
    return path


def _place(source: str | None, target: str, scratch: str) -> None:
    """Bind ``source`` at ``target``; with no source, just make ``target`` an empty directory."""
    is_dir = source is None or os.path.isdir(source)
    if os.path.lexists(target):
        if source is None:
            return
        if os.path.isdir(target) != is_dir:
            kind = "directory" if is_dir else "file"
            raise SetupError(
                f"cannot mount a {kind} at {target}: the path exists with another type"
            )
        _mount(source, target, None, MS_BIND | MS_REC)
        return
    ancestor, missing = _nearest_existing(target)
    os.makedirs(scratch, exist_ok=True)
    _replicate(ancestor, scratch)
    created = _create(scratch, missing, is_dir)
    if source is not None:
        _mount(source, created, None, MS_BIND | MS_REC)
    if ancestor == "/":
        os.chroot(scratch)
        os.chdir("/")
    else:
        _mount(scratch, ancestor, None, MS_MOVE)


def _prepare(spec: dict) -> None:
    mounts = spec.get("mounts") or []
    if mounts:
        _enter_private_mount_namespace()
        for number, (source, target) in enumerate(mounts):
            _place(source, os.path.normpath(target), os.path.join(spec["scratch"], str(number)))
    os.chdir(spec["cwd"])


def main() -> None:
    spec = json.loads(sys.argv[1])
    status_fd = int(spec["status_fd"])
    os.set_inheritable(status_fd, False)
    argv = spec["argv"]
    try:
        _prepare(spec)
    except (OSError, SetupError) as error:
        os.write(status_fd, f"failed to prepare the container: {error}".encode())
        os._exit(128)
    try:
        os.execvp(argv[0], argv)  # noqa: S606 - a container's command runs without a shell
    except OSError as error:
        os.write(status_fd, f'exec: "{argv[0]}": {error.strerror}'.encode())
        os._exit(128)


if __name__ == "__main__":
    main()
