"""A throw-away PostgreSQL server for the tests: Debian's server programs, a data directory in a fresh
temporary folder, a free port on 127.0.0.1 only (no Unix socket), removed when stopped.

PostgreSQL refuses to run as root: when the tests do, the server runs as the ``postgres`` system user
(made by Debian's package) through ``runuser``, and owns its folder. ``scripts/ensure-postgres.sh``
(``make test``) installs the package when the programs are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

SERVER_USER = "postgres"  # the system user of Debian's package, and the database superuser here
# A test server: small, and durable only as long as it runs.
CONFIG = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 40
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class PostgresMissing(RuntimeError):
    pass


def server_programs() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest ``/usr/lib/postgresql/<n>/bin``."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        raise PostgresMissing("PostgreSQL's server programs are not installed: run scripts/ensure-postgres.sh "
                              "(make test does)")
    return Path(versions[-1]).parent


class LocalPostgres:
    def __init__(self, port: int) -> None:
        self.port = port
        self.bin = server_programs()
        self.home = Path(tempfile.mkdtemp(prefix="orderflow-postgres-"))
        self.data = self.home / "data"
        self.log_path = self.home / "server.log"
        self.as_root = os.geteuid() == 0

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def start(self) -> LocalPostgres:
        if self.as_root:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.home, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SERVER_USER, "--auth=trust", "--encoding=UTF8",
                  "--no-locale", "--no-sync")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(CONFIG.format(port=self.port))
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        finally:
            shutil.rmtree(self.home, ignore_errors=True)

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url("postgres", "postgresql"), autocommit=True)

    def create_database(self) -> str:
        """A new, empty database; its name."""
        name = f"t{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # a name of our own making: nothing to escape
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
