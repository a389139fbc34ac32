"""A throwaway PostgreSQL cluster: initdb as the `postgres` user, own port, roles and database."""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from services.stack.config import StackConfig, find_pg_bin_dir
from services.stack.errors import PartFailed
from services.stack.process import stop_pid

log = logging.getLogger(__name__)

PART = "postgres"
DATABASE = "tollgate"
OWNER_ROLE = "tollgate_owner"
APP_ROLE = "tollgate_app"
OS_USER = "postgres"
STOP_SIGNALS = (signal.SIGINT, signal.SIGQUIT)  # fast shutdown, then immediate


def _as_postgres(argv: Sequence[str]) -> list[str]:
    """Prefix `argv` with runuser when root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return list(argv)
    return ["runuser", "-u", OS_USER, "--", *argv]


def _run(argv: Sequence[str], log_path: Path, what: str, timeout: float = 120.0) -> None:
    try:
        with log_path.open("ab") as out:
            done = subprocess.run(  # noqa: S603 - argv is built here
                _as_postgres(argv), stdout=out, stderr=subprocess.STDOUT, check=False, timeout=timeout
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PartFailed(PART, f"{what} failed: {exc}", log_path) from exc
    if done.returncode != 0:
        raise PartFailed(PART, f"{what} exited with code {done.returncode}", log_path)


def _prepare_dirs(cfg: StackConfig, work: Path) -> None:
    """Create the cluster's directories, owned by the postgres user and reachable by it."""
    (work / "run").mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(OS_USER)
    except KeyError as exc:
        raise PartFailed(PART, f"no `{OS_USER}` OS user: is the postgresql package installed?") from exc
    cfg.stack_dir.chmod(cfg.stack_dir.stat().st_mode | 0o011)
    for path in (work, work / "run"):
        os.chown(path, user.pw_uid, user.pw_gid)
    (work / "run").chmod(0o700)
    probe = subprocess.run(_as_postgres(["test", "-w", str(work)]), check=False)  # noqa: S603
    if probe.returncode != 0:
        reason = f"the `{OS_USER}` user cannot write {work}: make its parents traversable (o+x)"
        raise PartFailed(PART, reason)


def read_pid(data_dir: Path) -> int | None:
    """Return the postmaster pid from `postmaster.pid`, if any."""
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def start(cfg: StackConfig, ports: Mapping[str, int], on_spawn: Callable[[int], None]) -> dict[str, Any]:
    """Init a fresh cluster, start it on 127.0.0.1 with pg_ctl -w, create the roles and database."""
    bin_dir = cfg.pg_bin_dir or find_pg_bin_dir()
    work, data, run, log_path, setup_log = _paths(cfg)
    setup_log.parent.mkdir(parents=True, exist_ok=True)
    _prepare_dirs(cfg, work)
    port = ports[PART]
    _run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ],
        setup_log,
        "initdb",
    )
    pid = _pg_ctl_start(cfg, bin_dir, port, on_spawn, "pg_ctl start")
    passwords = {OWNER_ROLE: secrets.token_urlsafe(18), APP_ROLE: secrets.token_urlsafe(18)}
    _create_roles(run, port, passwords, log_path)
    url = f"postgresql://{{}}:{{}}@127.0.0.1:{port}/{DATABASE}"
    return {
        "pid": pid,
        "port": port,
        "log": str(log_path),
        "setup_log": str(setup_log),
        "dir": str(work),
        "socket_dir": str(run),
        "database": DATABASE,
        "bin_dir": str(bin_dir),
        "owner_role": OWNER_ROLE,
        "owner_password": passwords[OWNER_ROLE],
        "app_role": APP_ROLE,
        "app_password": passwords[APP_ROLE],
        "database_url": url.format(OWNER_ROLE, passwords[OWNER_ROLE]),
        "app_database_url": url.format(APP_ROLE, passwords[APP_ROLE]),
    }


def restart(cfg: StackConfig, ports: Mapping[str, int], on_spawn: Callable[[int], None]) -> dict[str, Any]:
    """Start the existing cluster again on its port with `pg_ctl -w` (no initdb, no new roles)."""
    bin_dir = cfg.pg_bin_dir or find_pg_bin_dir()
    _, data, _, _, setup_log = _paths(cfg)
    if not (data / "PG_VERSION").is_file():
        raise PartFailed(PART, f"no cluster to restart in {data}: start the stack first", setup_log)
    return {"pid": _pg_ctl_start(cfg, bin_dir, ports[PART], on_spawn, "pg_ctl start (restart)")}


def _paths(cfg: StackConfig) -> tuple[Path, Path, Path, Path, Path]:
    """The cluster's work dir, data dir, socket dir, server log and setup log."""
    work = cfg.part_dir(PART)
    return work, work / "data", work / "run", work / "postgres.log", cfg.log_path(PART)


def _pg_ctl_start(
    cfg: StackConfig, bin_dir: Path, port: int, on_spawn: Callable[[int], None], what: str
) -> int:
    """Start the cluster on 127.0.0.1:`port` with `pg_ctl -w` and return the postmaster's pid."""
    _, data, run, log_path, setup_log = _paths(cfg)
    options = f"-p {port} -k {run} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    timeout = str(int(cfg.ready_timeout))
    argv = [str(bin_dir / "pg_ctl"), "-w", "-t", timeout, "-D", str(data), "-l", str(log_path), "-o", options]
    try:
        _run([*argv, "start"], setup_log, what)
    finally:
        # A postmaster that started but was not ready in time still has to be known, so it can be stopped.
        pid = read_pid(data)
        if pid:
            on_spawn(pid)
    if pid is None:
        raise PartFailed(PART, "no postmaster.pid after pg_ctl start", log_path)
    return pid


def _create_roles(socket_dir: Path, port: int, passwords: Mapping[str, str], log_path: Path) -> None:
    import psycopg
    from psycopg import sql

    statements = [
        *(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(secret))
            for role, secret in passwords.items()
        ),
        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(OWNER_ROLE)),
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(DATABASE)),
        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
            sql.Identifier(DATABASE), sql.Identifier(APP_ROLE)
        ),
    ]
    try:
        with psycopg.connect(
            host=str(socket_dir), port=port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            for statement in statements:
                conn.execute(statement)
    except psycopg.Error as exc:
        raise PartFailed(PART, f"creating roles and database failed: {exc}", log_path) from exc


def stop(pid: int | None, grace: float = 30.0) -> bool:
    """Stop the postmaster by pid: fast shutdown, then immediate, then SIGKILL."""
    return stop_pid(pid, STOP_SIGNALS, grace)
