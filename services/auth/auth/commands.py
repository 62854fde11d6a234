"""The auth service's own commands, beside the shared ``migrate`` and ``serve`` (atlas_common.cli):

``python -m auth create-client --name NAME --scopes "users:read users:write"``
    a new client: prints ONE JSON object on stdout, {"client_id", "client_secret", "scopes"}: the only
    time the secret is shown (the database keeps its argon2id hash). Unknown scopes are refused.
``python -m auth generate-key PATH [--algorithm ES256|RS256] [--force]``
    a new signing key, PEM, mode 0600; an existing file is refused unless --force. Prints {"path", "kid",
    "alg"}: the kid is the key's RFC 7638 thumbprint, as the JWKS will publish it.

Exit status: 0 done, 1 failed (the database), 2 refused (a usage or configuration error), as migrate.
"""

from __future__ import annotations

import argparse
import json
import sys

from atlas_common.cli import Command


def _create_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="what the client is (1 to 200 characters)")
    parser.add_argument(
        "--scopes", required=True, help='the scopes it may ask for, separated by spaces: "users:read projects:read"'
    )


def create_client(args: argparse.Namespace) -> int:
    # Imported here: `python -m auth --help` and the other commands need none of it.
    import psycopg2
    from atlas_common.cli import libpq_target, one_line
    from atlas_common.config import ConfigError, Settings
    from atlas_common.schemas import Name
    from atlas_common.scopes import SCOPES, ordered, unknown
    from pydantic import TypeAdapter, ValidationError

    from auth.clients import clients, hash_secret, new_credentials

    prog = "auth create-client"
    try:
        name = TypeAdapter(Name).validate_python(args.name)
    except ValidationError as exc:
        print(f"{prog}: --name {exc.errors()[0]['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return 2
    asked = args.scopes.split()
    strangers = unknown(asked)
    if strangers or not asked:
        said = f"unknown scope(s): {' '.join(strangers)}" if strangers else "no scope given"
        print(f"{prog}: {said}; known: {' '.join(SCOPES)}", file=sys.stderr)
        return 2
    scopes = ordered(asked)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    client_id, secret = new_credentials()
    try:
        conn = psycopg2.connect(connect_timeout=settings.connect_timeout, application_name="auth-create-client")
    except psycopg2.OperationalError as exc:
        print(f"{prog}: cannot connect to the database ({libpq_target()}): {one_line(exc)}", file=sys.stderr)
        return 1
    try:
        with conn:
            clients.create(
                conn, {"client_id": client_id, "name": name, "scopes": scopes, "secret_hash": hash_secret(secret)}
            )
    except psycopg2.errors.UndefinedTable:
        print(f"{prog}: the database has no clients table: run python -m auth migrate first", file=sys.stderr)
        return 1
    except psycopg2.Error as exc:
        print(f"{prog}: failed: {one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    print(json.dumps({"client_id": client_id, "client_secret": secret, "scopes": scopes}))
    return 0


def _generate_key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the file to write (PEM, mode 0600)")
    parser.add_argument("--algorithm", choices=("ES256", "RS256"), default="ES256", help="default: ES256 (P-256)")
    parser.add_argument("--force", action="store_true", help="overwrite the file if it exists")


def generate_key(args: argparse.Namespace) -> int:
    from auth import signing

    pem = signing.generate(args.algorithm)
    try:
        signing.write_private(args.path, pem, overwrite=args.force)
    except FileExistsError:
        print(f"auth generate-key: {args.path} exists already; --force overwrites it", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"auth generate-key: cannot write {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    (key,) = signing.parse(pem.decode("ascii"))
    print(json.dumps({"path": args.path, "kid": key.kid, "alg": args.algorithm}))
    return 0


COMMANDS = (
    Command(
        "create-client",
        "create an OAuth client; prints its id and secret (shown this once) as one JSON object",
        create_client,
        _create_client_arguments,
    ),
    Command(
        "generate-key",
        "write a new token signing key (PEM, mode 0600) to PATH; prints its kid",
        generate_key,
        _generate_key_arguments,
    ),
)
