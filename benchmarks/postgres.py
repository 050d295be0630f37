"""A throwaway PostgreSQL server for the tests and the scale benchmark: `initdb` + `pg_ctl` from the
installed binaries, in a temporary directory, listening only on a unix socket there. The server refuses
to run as root, so as root every command runs as the `postgres` system user (Debian's package creates it)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL_HINT = "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql) to run the PostgreSQL tests"


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/N/bin (newest)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return Path(folders[-1]) if folders else None


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def server(directory: Path) -> Iterator[str]:
    """Start a throwaway server under `directory`; yields the SQLAlchemy URL of its `postgres` database.
    The server is stopped and `directory` deleted afterwards."""
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError(INSTALL_HINT)
    data, socket = directory / "data", directory / "socket"
    socket.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
        shutil.chown(socket, "postgres")
    run = lambda *args: subprocess.run(_as_server_user([str(bin_dir / args[0]), *args[1:]]), check=True,
                                       capture_output=True, text=True)
    run("initdb", "-D", str(data), "-U", "seal", "-A", "trust", "--no-sync", "-E", "UTF8")
    run("pg_ctl", "-D", str(data), "-l", str(directory / "server.log"), "-w", "-o",
        f"-k {socket} -c listen_addresses='' -c fsync=off", "start")
    try:
        yield f"postgresql+psycopg://seal@/postgres?host={socket}"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)
