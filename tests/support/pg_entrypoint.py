"""An emulation of the official postgres image's entrypoint, run inside the sandbox as the container's process.

Emulated: ``17/alpine3.22/docker-entrypoint.sh`` of github.com/docker-library/postgres at commit
6edb0a8c4def40c371514b34aef9037ec82d9110 (the file last changed in 2925b19f45ceeb8ab8488eec226f2736abf297e1),
the entrypoint of ``postgres:17.6-alpine``; written from reading it, no code copied. What it does on a
container start, and so what this does, for ``postgres`` (the image's CMD) with arguments:

1. read POSTGRES_PASSWORD / POSTGRES_USER (default ``postgres``) / POSTGRES_DB (default the user) /
   POSTGRES_INITDB_ARGS, each from the variable or from the file its ``*_FILE`` variable names (both set
   is an error); the database exists already when ``$PGDATA/PG_VERSION`` is non-empty;
2. create PGDATA (mode 0700, a failing chmod ignored) and /var/run/postgresql (mode 3775, failures ignored);
   as root it would chown both and step down to ``postgres`` with gosu - under the chart's runAsUser it
   never is root, and this emulation refuses root rather than pretend;
3. on an empty PGDATA only: refuse an empty password unless POSTGRES_HOST_AUTH_METHOD is ``trust``; list
   /docker-entrypoint-initdb.d; ``initdb --username=$POSTGRES_USER --pwfile=<password + newline>``
   plus POSTGRES_INITDB_ARGS; append ``host all all all <method>`` to pg_hba.conf, the method being
   POSTGRES_HOST_AUTH_METHOD or else what ``postgres -C password_encryption`` prints (scram-sha-256);
   start a socket-only temporary server (``-c listen_addresses='' -p ${PGPORT:-5432}``, pg_ctl -w), create
   POSTGRES_DB with psql over the socket unless it exists, run the init files (the image has none and the
   chart mounts none; any found here is refused as not emulated), stop the server (fast);
4. exec the server with the given arguments.

One deliberate difference, asked for with ``--loopback-clients-are-remote``: initdb's default pg_hba.conf
trusts TCP from 127.0.0.1 and ::1, which in a pod only the pod's own processes (the probes) use. Here every
client - the services, the tests - reaches the server over loopback standing in for another pod, so the
loopback ``host`` lines get the method the image gives every other address. The socket stays ``trust``.

Usage (the sandbox's container command): python pg_entrypoint.py [--loopback-clients-are-remote] postgres ARGS
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys

SOCKET_DIR = "/var/run/postgresql"  # the image's compiled-in DEFAULT_PGSOCKET_DIR (as Debian's)
INITDB_DIR = "/docker-entrypoint-initdb.d"
LOOPBACK = ("127.0.0.1/32", "::1/128")


def fail(message: str) -> None:
    print(f"pg_entrypoint (emulated docker-entrypoint.sh): {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def from_env_or_file(name: str, default: str = "") -> str:
    """The variable's value, or the content of the file ``<name>_FILE`` names (the image's file_env)."""
    direct, path = os.environ.get(name, ""), os.environ.get(f"{name}_FILE", "")
    if direct and path:
        fail(f"both {name} and {name}_FILE are set (but are exclusive)")
    value = default
    if direct:
        value = direct
    elif path:
        with open(path) as f:
            value = f.read().rstrip("\n")  # $(< file) drops trailing newlines
    os.environ[name] = value
    os.environ.pop(f"{name}_FILE", None)
    return value


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    print(f"pg_entrypoint: {' '.join(shlex.quote(a) for a in argv[:4])}{' ...' if len(argv) > 4 else ''}", flush=True)
    proc = subprocess.run(argv, check=False, **kwargs)
    if proc.returncode != 0:
        fail(f"{argv[0]} exited {proc.returncode}")
    return proc


def loopback_as_remote(hba_path: str, method: str) -> None:
    with open(hba_path) as f:
        lines = f.read().splitlines()
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 5 and fields[0] == "host" and fields[3] in LOOPBACK and fields[4] == "trust":
            line = f"{' '.join(fields[:4])} {method}  # sandbox: loopback stands in for other pods"
        out.append(line)
    with open(hba_path, "w") as f:
        f.write("\n".join(out) + "\n")


def initialise(pgdata: str, server_args: list[str], loopback_remote: bool) -> None:
    password = os.environ["POSTGRES_PASSWORD"]
    user = os.environ["POSTGRES_USER"]
    database = os.environ["POSTGRES_DB"]
    host_auth = os.environ.get("POSTGRES_HOST_AUTH_METHOD", "")
    if not password and host_auth != "trust":
        fail("Database is uninitialized and superuser password is not specified.")
    os.listdir(INITDB_DIR)  # the image checks it can read it before it initialises anything
    initdb_args = shlex.split(os.environ.get("POSTGRES_INITDB_ARGS", ""))
    run(["initdb", f"--username={user}", "--pwfile=/dev/stdin", *initdb_args], input=f"{password}\n", text=True)
    method = (
        host_auth
        or run(["postgres", "-C", "password_encryption", *server_args], capture_output=True, text=True).stdout.strip()
    )
    hba = os.path.join(pgdata, "pg_hba.conf")
    with open(hba, "a") as f:
        f.write(f"\nhost all all all {method}\n")
    if loopback_remote:
        loopback_as_remote(hba, method)

    os.environ.setdefault("PGPASSWORD", password)
    temp_args = [*server_args, "-c", "listen_addresses=", "-p", os.environ.get("PGPORT", "5432")]
    env = {**os.environ, "PGUSER": os.environ.get("PGUSER", user), "NOTIFY_SOCKET": ""}
    run(["pg_ctl", "-D", pgdata, "-o", " ".join(shlex.quote(a) for a in temp_args), "-w", "start"], env=env)
    psql = ["psql", "-v", "ON_ERROR_STOP=1", "--username", user, "--no-password", "--no-psqlrc", "--dbname", "postgres"]
    socket_env = {k: v for k, v in env.items() if k not in ("PGHOST", "PGHOSTADDR")}
    exists = run(
        [*psql, "--set", f"db={database}", "--tuples-only"],
        input="SELECT 1 FROM pg_database WHERE datname = :'db' ;\n",
        capture_output=True,
        text=True,
        env=socket_env,
    ).stdout.strip()
    if not exists:
        run([*psql, "--set", f"db={database}"], input='CREATE DATABASE :"db" ;\n', text=True, env=socket_env)
    init_files = sorted(os.listdir(INITDB_DIR))
    if init_files:
        fail(f"init files in {INITDB_DIR} are not emulated: {init_files}")
    run(
        ["pg_ctl", "-D", pgdata, "-m", "fast", "-w", "stop"],
        env={**env, "PGUSER": os.environ.get("PGUSER", "postgres")},
    )
    os.environ.pop("PGPASSWORD", None)
    print("\nPostgreSQL init process complete; ready for start up.\n", flush=True)


def main(argv: list[str]) -> None:
    loopback_remote = False
    if argv and argv[0] == "--loopback-clients-are-remote":
        loopback_remote, argv = True, argv[1:]
    args = argv or ["postgres"]
    if args[0].startswith("-"):
        args = ["postgres", *args]
    wants_help = any(a in ("-?", "--help", "--describe-config", "-V", "--version") for a in args)
    if args[0] == "postgres" and not wants_help:
        from_env_or_file("POSTGRES_PASSWORD")
        user = from_env_or_file("POSTGRES_USER", "postgres")
        from_env_or_file("POSTGRES_DB", user)
        from_env_or_file("POSTGRES_INITDB_ARGS")
        pgdata = os.environ["PGDATA"]
        version = os.path.join(pgdata, "PG_VERSION")
        already = os.path.exists(version) and os.path.getsize(version) > 0
        os.makedirs(pgdata, exist_ok=True)
        # Failures ignored, as the image ignores them (a volume's root may not be ours to chmod).
        with contextlib.suppress(OSError):
            os.chmod(pgdata, 0o700)
        with contextlib.suppress(OSError):
            os.makedirs(SOCKET_DIR, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(SOCKET_DIR, 0o3775)  # noqa: S103 - the image's mode for its socket directory
        if os.getuid() == 0:
            fail("running as root (the image would chown and gosu to postgres): not emulated")
        if already:
            print("\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n")
        else:
            initialise(pgdata, args[1:], loopback_remote)
    sys.stdout.flush()
    os.execvp(args[0], args)  # noqa: S606 - exec "$@", as the image's entrypoint ends


if __name__ == "__main__":
    main(sys.argv[1:])
