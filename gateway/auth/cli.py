"""``sharpeyes audit verify``, ``sharpeyes user ...`` and ``sharpeyes token ...``.

They work on ``security.sqlite3`` in the data folder directly, also while the gateway runs
(SQLite's write lock orders them; the gateway reads tokens from the file on every request,
so a revocation here takes effect at once). Changes are audited as done by the operating
system user through the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway import settings as config
from gateway.audit import Action, BrokenChain, append, content_of, verify
from gateway.auth.db import FILE_NAME, SecurityDb, connect
from gateway.auth.principals import EVERYTHING, Directory, Principal, Role, parse_scope
from gateway.errors import GatewayError


def cli_principal() -> Principal:
    return Principal(None, getpass.getuser(), Role.ADMIN, EVERYTHING, "cli", "local")


def record_sync(
    data_dir: Path,
    action: Action,
    *,
    camera: str | None = None,
    region: str | None = None,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Audit an action of a command-line tool (``sharpeyes export``, ...), blocking."""
    db = connect(data_dir / FILE_NAME)
    try:
        content = content_of(
            cli_principal(), action, outcome="ok", camera=camera, region=region, detail=detail
        )
        append(db, content)
    finally:
        db.close()


def register(commands: Any) -> None:
    def data_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", type=Path, help="YAML configuration file")
        parser.add_argument("--data", type=Path, help="data folder (default: configuration)")

    audit = commands.add_parser("audit", help="the audit log").add_subparsers(
        dest="audit_command", required=True
    )
    check = audit.add_parser("verify", help="check the hash chain; exit 1 at a broken row")
    data_args(check)
    check.set_defaults(func=_verify)

    roles = [r.value for r in Role]
    user = commands.add_parser("user", help="users (web sign-in, API tokens)").add_subparsers(
        dest="user_command", required=True
    )
    add = user.add_parser("add", help="create a user")
    add.add_argument("username")
    add.add_argument("--role", choices=roles, required=True)
    add.add_argument("--region", action="append", help="region subtree (repeat); none: all")
    add.add_argument("--class", dest="classes", action="append", choices=["A", "B", "C"])
    add.add_argument("--password-stdin", action="store_true", help="read a password from stdin")
    data_args(add)
    add.set_defaults(func=_user_add)
    listing = user.add_parser("list", help="list users")
    data_args(listing)
    listing.set_defaults(func=_user_list)
    for name, disabled in (("disable", True), ("enable", False)):
        toggle = user.add_parser(name, help=f"{name} a user (and so all its tokens)")
        toggle.add_argument("username")
        data_args(toggle)
        toggle.set_defaults(func=_user_toggle, disabled=disabled)

    token = commands.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", required=True
    )
    create = token.add_parser("create", help="create a token; it is printed once")
    create.add_argument("username", help="the user it acts as")
    create.add_argument("--name", required=True, help="what or who uses it")
    create.add_argument("--days", type=float, default=None, help="lifetime (default 366)")
    data_args(create)
    create.set_defaults(func=_token_create)
    tokens = token.add_parser("list", help="list tokens")
    data_args(tokens)
    tokens.set_defaults(func=_token_list)
    revoke = token.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id", type=int)
    data_args(revoke)
    revoke.set_defaults(func=_token_revoke)


def _data_dir(args: argparse.Namespace) -> Path:
    data: Path = args.data or config.load(args.config).data_dir
    return data


def _verify(args: argparse.Namespace) -> int:
    path = _data_dir(args) / FILE_NAME
    if not path.is_file():
        print(f"no audit log at {path}", file=sys.stderr)
        return 1
    db = connect(path)
    try:
        rows, head = verify(db)
    except BrokenChain as exc:
        print(f"BROKEN: {exc.message}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(f"audit log intact: {rows} row(s), head {head}")
    return 0


def _run(args: argparse.Namespace, work: Any) -> int:
    async def main() -> int:
        db = await SecurityDb.open(_data_dir(args))
        try:
            result: int = await work(Directory(db), db)
            return result
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except GatewayError as exc:
        print(exc.message, file=sys.stderr)
        return 2 if exc.status == 422 else 1


def _audit(db: SecurityDb, action: Action, detail: Mapping[str, object]) -> Any:
    content = content_of(
        cli_principal(), action, outcome="ok", camera=None, region=None, detail=detail
    )
    return db.call(append, content)


def _user_add(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None

    async def work(directory: Directory, db: SecurityDb) -> int:
        scope = parse_scope(args.region, args.classes)
        made = await directory.create_user(
            args.username, Role(args.role), scope, password, f"cli:{getpass.getuser()}"
        )
        await _audit(db, Action.USER_CREATE, {"user": made.username, "role": made.role.value})
        print(f"user {made.id} {made.username} ({made.role.value}) created")
        return 0

    return _run(args, work)


def _user_list(args: argparse.Namespace) -> int:
    async def work(directory: Directory, db: SecurityDb) -> int:
        for u in await directory.users():
            regions = ",".join(u.scope.regions) if u.scope.regions is not None else "*"
            classes = "".join(sorted(u.scope.classes)) if u.scope.classes is not None else "*"
            state = "disabled" if u.disabled else "active"
            print(f"{u.id}\t{u.username}\t{u.role.value}\t{regions}\t{classes}\t{state}")
        return 0

    return _run(args, work)


def _user_toggle(args: argparse.Namespace) -> int:
    async def work(directory: Directory, db: SecurityDb) -> int:
        user = await directory.user_named(args.username)
        await directory.update_user(user.id, disabled=args.disabled)
        detail = {"user": user.username, "changed": ["disabled"]}
        await _audit(db, Action.USER_UPDATE, detail)
        print(f"user {user.username} {'disabled' if args.disabled else 'enabled'}")
        return 0

    return _run(args, work)


def _token_create(args: argparse.Namespace) -> int:
    async def work(directory: Directory, db: SecurityDb) -> int:
        user = await directory.user_named(args.username)
        longest = config.load(args.config).security.token_max_days
        days = args.days if args.days is not None else longest
        if not 0 < days <= longest:
            print(f"--days must be between 0 and {longest:g}", file=sys.stderr)
            return 2
        token, info = await directory.create_token(user.id, args.name, time.time() + days * 86400)
        detail = {"token_id": info.id, "user": user.username, "name": args.name}
        await _audit(db, Action.TOKEN_CREATE, detail)
        print(token)  # the only output on stdout: scripts capture it
        print(f"token {info.id} for {user.username}, shown once", file=sys.stderr)
        return 0

    return _run(args, work)


def _token_list(args: argparse.Namespace) -> int:
    async def work(directory: Directory, db: SecurityDb) -> int:
        now = time.time()
        for t in await directory.tokens():
            if t.revoked_at is not None:
                state = "revoked"
            elif t.expires_at is not None and t.expires_at <= now:
                state = "expired"
            else:
                state = "active"
            print(f"{t.id}\t{t.hint}…\t{t.username}\t{t.name}\t{state}")
        return 0

    return _run(args, work)


def _token_revoke(args: argparse.Namespace) -> int:
    async def work(directory: Directory, db: SecurityDb) -> int:
        info = await directory.revoke_token(args.token_id)
        await _audit(db, Action.TOKEN_REVOKE, {"token_id": info.id, "user": info.username})
        print(f"token {info.id} of {info.username} revoked")
        return 0

    return _run(args, work)
