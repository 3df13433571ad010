"""The `tiaojie` command."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from tiaojie import __version__
from tiaojie.server.config import Settings, add_serve_arguments, settings_from_args
from tiaojie.server.credentials import ADMIN_TOKEN_FILE

if TYPE_CHECKING:
    from tiaojie.server.recordings import ArchivistRegister


def _banner(settings: Settings, admin_token: str, new: bool, recorder_key: str = "") -> str:
    token_line = (
        f"  admin token (shown once; kept in {settings.data_dir / ADMIN_TOKEN_FILE}):\n"
        f"    {admin_token}\n"
        if new
        else f"  admin token: in {settings.data_dir / ADMIN_TOKEN_FILE} (or TIAOJIE_ADMIN_TOKEN)\n"
    )
    return (
        f"\nTiaojie {__version__} is running: open {settings.base_url}/\n"
        f"  database: {_database_shown(settings)};"
        f" data: {settings.data_dir.resolve()}\n"
        f"{token_line}"
        f"  recorder key id (archivists check recordings against it): {recorder_key}\n"
        f"    public key: {settings.data_dir / 'keys' / 'recorder_ed25519.pub.pem'}\n"
        f"  local CA (trust root of agreements): {settings.data_dir / 'keys' / 'ca.cert.pem'}\n"
        "  create a room and its invite links, in another terminal:\n"
        f"    .venv/bin/tiaojie new-room '邻里纠纷调解' --data {settings.data_dir}\n"
        "  (or POST /api/rooms with the admin token, see docs/PROTOCOL.md)\n"
    )


#: Whatever the server and its recorders write (archive, agreements, logs, keys) is for
#: the account that runs them alone.
PRIVATE_UMASK = 0o077


def _database_shown(settings: Settings) -> str:
    from tiaojie.server.db import parse_database_url

    shown = parse_database_url(settings.database_url, settings.data_dir).shown()
    if shown == "memory:":
        shown += " (rooms are lost when the server stops)"
    return shown + ("; events between nodes: Redis" if settings.redis_url else "")


def serve(args: argparse.Namespace) -> int:
    from tiaojie.server import listener
    from tiaojie.server.app import create_app
    from tiaojie.server.state import app_state

    os.umask(PRIVATE_UMASK)
    settings = settings_from_args(args)
    internal = None
    if settings.tls_cert is not None or settings.tls_key is not None:
        try:
            listener.tls_context(settings)
        except ValueError as error:
            print(f"tiaojie: {error}", file=sys.stderr)
            return 2
        internal = listener.internal_socket()
        settings = dataclasses.replace(settings, internal_port=internal.getsockname()[1])
    from tiaojie.server.log_format import configure_logging

    configure_logging(settings.log_format)
    # aioice logs every candidate pair, with participants' addresses, at INFO.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    try:
        app = create_app(settings)
    except OSError as error:
        print(f"tiaojie: cannot use data directory {settings.data_dir}: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, ValueError) as error:
        print(f"tiaojie: {error}", file=sys.stderr)
        return 2
    credentials = app_state(app).credentials
    from tiaojie.server.db import DatabaseError, parse_database_url, prepare

    try:  # before the keys are made: a wrong --database should stop the start at once
        prepare(parse_database_url(settings.database_url, settings.data_dir))
    except DatabaseError as error:
        print(f"tiaojie: {error}", file=sys.stderr)
        return 2
    try:
        # The local CA, organisation seal and TSA keys: made on first run (a few seconds),
        # so the first agreement does not wait for them. Tests skip this (create_app).
        from tiaojie.signing.authority import Authority

        Authority.load_or_create(settings.data_dir / "keys")
    except OSError as error:
        print(f"tiaojie: cannot write keys in {settings.data_dir}: {error}", file=sys.stderr)
        return 2

    async def announce(_: web.Application) -> None:
        recordings = app_state(app).recordings
        key = recordings.key_id if recordings is not None else ""
        print(
            _banner(settings, credentials.admin_token, credentials.admin_token_new, key),
            flush=True,
        )

    app.on_startup.append(announce)
    try:
        listener.run(app, settings, internal)
    except DatabaseError as error:  # the store opens on start (server/app.py)
        print(f"tiaojie: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(
            f"tiaojie: cannot listen on {settings.host}:{settings.port}: {error}", file=sys.stderr
        )
        return 2
    return 0


def _post(url: str, token: str, body: dict[str, object], timeout: float = 10) -> dict[str, object]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _local_server() -> str:
    """Where `serve` listens, as its settings say (TIAOJIE_HOST, TIAOJIE_PORT)."""
    from tiaojie.server.config import Settings, local_port

    host = os.environ.get("TIAOJIE_HOST") or "127.0.0.1"
    return Settings(host=host, port=local_port()).local_url


def health(args: argparse.Namespace) -> int:
    """Exit 0 when the server on this machine answers /api/health with "ok" (the image's
    health check): HTTPS when TIAOJIE_TLS_CERT is set, without checking the certificate's
    name (it is issued for the public name, and this is a liveness probe over loopback)."""
    import ssl

    scheme = "https" if os.environ.get("TIAOJIE_TLS_CERT") else "http"
    url = args.url or _local_server().replace("http://", f"{scheme}://", 1)
    context = None
    if url.startswith("https://"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(
            f"{url.rstrip('/')}/api/health", timeout=args.timeout, context=context
        ) as response:
            status = json.loads(response.read()).get("status")
    except (OSError, ValueError) as error:
        print(f"tiaojie health: {url} does not answer: {error}", file=sys.stderr)
        return 1
    if status != "ok":
        print(f"tiaojie health: {url} answers {status!r}", file=sys.stderr)
        return 1
    return 0


def _admin_token(data_dir: Path) -> str:
    """TIAOJIE_ADMIN_TOKEN, else the one `serve` keeps in the data directory ("" and a
    message when there is none)."""
    token = os.environ.get("TIAOJIE_ADMIN_TOKEN") or ""
    if token:
        return token
    try:
        return (data_dir / ADMIN_TOKEN_FILE).read_text().strip()
    except OSError as error:
        print(
            f"tiaojie: no admin token: set TIAOJIE_ADMIN_TOKEN or --data ({error})", file=sys.stderr
        )
        return ""


def drain(args: argparse.Namespace) -> int:
    """Drain the node on this machine (or --server): no new room is placed on it, and its
    rooms move to other live nodes (recordings continue there, linked; participants
    reconnect there). --undo opens it again."""
    token = _admin_token(args.data_dir)
    if not token:
        return 2
    server = (args.server or _local_server()).rstrip("/")
    try:
        # moving rooms waits for each recording's seal and its successor's start
        node = _post(f"{server}/api/node/drain", token, {"draining": not args.undo}, 300)
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}")
        print(f"tiaojie: {error.code} {detail.get('message', error.reason)}", file=sys.stderr)
        return 1
    except urllib.error.URLError as error:
        print(f"tiaojie: cannot reach {server}: {error.reason}", file=sys.stderr)
        return 2
    state = "draining: no new rooms" if node["draining"] else "open: takes new rooms"
    print(
        f"node {node['id']} ({node['url']}): {state}; moved {node.get('moved_rooms', 0)} "
        f"rooms, hosting {node.get('hosted_rooms', 0)}"
    )
    return 0


def new_room(args: argparse.Namespace) -> int:
    """Create a room on a running server, with a mediator link and party links. Everything
    is checked before the room is made: no room is left without its links."""
    from tiaojie.server.errors import TiaojieError
    from tiaojie.server.schemas import CREATE_INVITE, CREATE_ROOM
    from tiaojie.server.validation import validate

    invites = [("mediator", args.mediator)] + [("party", n) for n in args.party]
    invites += [("expert", n) for n in args.expert]
    bodies = []
    try:
        what = "the title"
        room_body = validate(CREATE_ROOM, {"title": args.title, "lobby": not args.no_lobby})
        for role, name in invites:
            what = f"the {role} link for {name!r}"
            body = {"role": role, "name": name, "expires_in": args.expires_in}
            bodies.append(validate(CREATE_INVITE, body))
    except TiaojieError as error:
        message = error.message.replace("payload.", "").replace("expires_in", "--expires-in")
        print(f"tiaojie: nothing was created: {what}: {message}", file=sys.stderr)
        return 2
    token = _admin_token(args.data_dir)
    if not token:
        return 2
    server = (args.server or _local_server()).rstrip("/")
    try:
        room = _post(f"{server}/api/rooms", token, room_body)
        print(f"room {room['id']}: {room['title']}")
        for body in bodies:
            invite = _post(f"{server}/api/rooms/{room['id']}/invites", token, body)
            print(f"  {body['role']:9} {body['name']}: {invite['url']}")
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}")
        print(f"tiaojie: {error.code} {detail.get('message', error.reason)}", file=sys.stderr)
        return 1
    except urllib.error.URLError as error:
        print(
            f"tiaojie: cannot reach {server}: {error.reason} (is tiaojie serve running there? "
            "--server, or TIAOJIE_HOST / TIAOJIE_PORT as for serve)",
            file=sys.stderr,
        )
        return 2
    return 0


def bot(args: argparse.Namespace) -> int:
    import asyncio

    from tiaojie.client.bot import run_bot
    from tiaojie.client.session import parse_link

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    try:
        parse_link(args.link)
    except ValueError as error:
        print(f"tiaojie: {error}", file=sys.stderr)
        return 2
    if args.publish is not None and not args.publish.is_file():
        print(f"tiaojie: no such file: {args.publish}", file=sys.stderr)
        return 2
    return asyncio.run(run_bot(args.link, args.publish, args.name))


def archivist_token(args: argparse.Namespace) -> int:
    """Issue an archivist token (registered in DATA/archivist_tokens.jsonl, logged by id
    and label, never the token), list the register, or revoke one."""
    import time

    from tiaojie.archive.localtime import zone
    from tiaojie.server.credentials import WeakSecret, load_credentials
    from tiaojie.server.recordings import ArchiveAuth, ArchivistRegister
    from tiaojie.server.recordings.archivists import MAX_LIFETIME, check_label, when

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    register = ArchivistRegister.of(args.data_dir)
    issuing = not args.list and args.revoke is None
    if issuing and not 1 <= args.days <= MAX_LIFETIME // 86400:
        print(f"tiaojie: --days must be between 1 and {MAX_LIFETIME // 86400}", file=sys.stderr)
        return 2
    try:
        if issuing:
            check_label(args.label)
    except ValueError as error:
        print(f"tiaojie: --label: {error}", file=sys.stderr)
        return 2
    try:
        if args.list:
            now = time.time()
            tz = zone()
            for entry in sorted(register.tokens().values(), key=lambda t: t.issued):
                print(
                    f"{entry.id}  {entry.status(now):7}  issued {when(entry.issued, tz)}"
                    f"  expires {when(entry.expires, tz)}  {entry.label}"
                )
            return 0
        if args.revoke is not None:
            return _revoke_archivist_token(register, args.revoke)
        credentials = load_credentials(args.data_dir, os.environ.get("TIAOJIE_SECRET_KEY"))
        token, _ = ArchiveAuth(credentials.token_secret, register).issue(
            args.label, args.days * 86400
        )
    except OSError as error:
        print(f"tiaojie: cannot use data directory {args.data_dir}: {error}", file=sys.stderr)
        return 2
    except WeakSecret as error:
        print(f"tiaojie: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"tiaojie: cannot use the register {register.path}: {error}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _revoke_archivist_token(register: ArchivistRegister, token_id: str) -> int:
    try:
        token = register.revoke(token_id)
    except KeyError:
        print(f"tiaojie: no archivist token {token_id!r} in {register.path}", file=sys.stderr)
        return 1
    print(f"archivist token {token.id} ({token.label}) is revoked", file=sys.stderr)
    return 0


def _library_logs(verbose: bool) -> None:
    """Libraries (pyhanko, its certificate validator) log warnings with tracebacks while
    they judge a document; the verdict is the report's. Shown with -v only."""
    if verbose:
        logging.basicConfig(
            level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
        )
    else:  # a handler that drops everything: Python's last-resort stderr handler stays off
        logging.getLogger().addHandler(logging.NullHandler())


def verify(args: argparse.Namespace) -> int:
    """An agreement PDF (signing/), a recording folder / segment MP4 (archive/verify/), a
    recording bundle ZIP (both), or a case dossier ZIP (archive/dossier.py)."""
    from tiaojie.archive.bundle import is_bundle
    from tiaojie.archive.localtime import zone
    from tiaojie.archive.report_words import Words

    _library_logs(args.verbose)
    try:
        words = Words("zh" if args.lang.startswith("zh") else "en", zone(args.timezone))
    except ValueError as error:
        print(f"tiaojie verify: {error}", file=sys.stderr)
        return 2
    if args.previous is not None and args.path.suffix.lower() in (".zip", ".pdf"):
        print("tiaojie verify: --previous is for a recording folder", file=sys.stderr)
        return 2
    from tiaojie.archive.court_bundle import is_court_bundle

    if is_court_bundle(args.path):
        if args.recording is not None or args.tsa_trust is not None:
            print("tiaojie verify: a court bundle takes --trust and --ca", file=sys.stderr)
            return 2
        from tiaojie.signing.court_verify import verify_court_bundle_cli

        return verify_court_bundle_cli(args.path, args.trust, args.ca, args.json, words)
    if is_bundle(args.path):
        if args.recording is not None:
            print("tiaojie verify: a bundle holds its recording; no --recording", file=sys.stderr)
            return 2
        from tiaojie.signing.bundle_verify import verify_bundle_cli

        return verify_bundle_cli(args.path, args.trust, args.tsa_trust, args.ca, args.json, words)
    if args.path.suffix.lower() == ".zip":
        if args.recording is not None or args.tsa_trust is not None:
            print("tiaojie verify: a dossier takes --trust only", file=sys.stderr)
            return 2
        from tiaojie.archive.dossier import verify_dossier_cli

        return verify_dossier_cli(args.path, args.trust, args.json, words)
    if args.path.suffix.lower() == ".pdf":
        try:
            from tiaojie.signing.validator import verify_agreement_cli
        except ImportError as error:
            print(f"tiaojie verify: cannot verify PDFs here: {error}", file=sys.stderr)
            return 2
        return verify_agreement_cli(args.path, args.trust, args.recording, args.json, words)
    if args.recording is not None:
        print("tiaojie verify: --recording is for an agreement PDF", file=sys.stderr)
        return 2
    from tiaojie.archive.verify.cli import verify_recording_cli

    return verify_recording_cli(
        args.path, args.trust, args.tsa_trust, args.json, words, args.previous
    )


def migrate(args: argparse.Namespace) -> int:
    """Bring the database's schema to this version's (`serve` does it too, on start)."""
    from tiaojie.server.db import DatabaseError, parse_database_url, prepare
    from tiaojie.server.db.migrate import head

    try:
        url = parse_database_url(args.database_url, args.data_dir)
        done = prepare(url)
    except (ValueError, DatabaseError) as error:
        print(f"tiaojie: {error}", file=sys.stderr)
        return 2
    if done is None:
        print("tiaojie: memory: has no schema to migrate", file=sys.stderr)
        return 2
    if done.before == done.after:
        print(f"database {url.shown()}: schema at revision {done.after} (the newest, {head()})")
    else:
        before = done.before or "(empty)"
        print(f"database {url.shown()}: schema migrated from {before} to {done.after}")
    return 0


def _read_password(from_stdin: bool) -> str | None:
    """The new password: one line of stdin, or typed twice at a prompt (not echoed)."""
    import getpass

    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not sys.stdin.isatty():
        print("tiaojie: no terminal to ask the password on: use --password-stdin", file=sys.stderr)
        return None
    first = getpass.getpass("password for the new admin (at least 10 characters): ")
    if getpass.getpass("the same password again: ") != first:
        print("tiaojie: the two passwords differ; nothing was changed", file=sys.stderr)
        return None
    return first


def create_admin(args: argparse.Namespace) -> int:
    """An admin account in the database (server/accounts/bootstrap.py)."""
    from tiaojie.server.accounts.bootstrap import AdminRequest
    from tiaojie.server.accounts.bootstrap import create_admin as make_admin
    from tiaojie.server.db import DatabaseError, parse_database_url
    from tiaojie.server.errors import TiaojieError

    password = _read_password(args.password_stdin)
    if password is None:
        return 2
    try:
        url = parse_database_url(args.database_url, args.data_dir)
        wanted = AdminRequest(args.login, args.name, args.organisation, password).checked()
        account, organisation, made = make_admin(url, wanted)
    except (ValueError, DatabaseError) as error:
        print(f"tiaojie: {error}", file=sys.stderr)
        return 2
    except TiaojieError as error:  # the login is taken, a name is refused
        print(f"tiaojie: {error.message}", file=sys.stderr)
        return 1
    new = " (new)" if made else ""
    print(
        f"admin account {account.login} ({account.id}) created in organisation "
        f"{organisation.name}{new} ({organisation.id}); log in at /login"
    )
    return 0


def backup(args: argparse.Namespace) -> int:
    """A consistent online copy of the database, the keys and the archive (server/backup.py)."""
    from tiaojie.server.backup import BackupError
    from tiaojie.server.backup import backup as make_backup
    from tiaojie.server.db import parse_database_url

    try:
        url = parse_database_url(args.database_url, args.data_dir)
        done = make_backup(args.data_dir, url, args.dest)
    except (ValueError, BackupError, OSError) as error:
        print(f"tiaojie: {error}", file=sys.stderr)
        return 2
    archive = done.index["archive"]
    print(
        f"backup in {args.dest}: {len(done.index['files'])} files, "
        f"{len(archive['recordings'])} recordings, {len(archive['agreements'])} agreements "
        f"(index: {args.dest / 'index.json'})"
    )
    if done.pg_dump:
        print(f"the PostgreSQL database is not in it; copy it with:\n  {done.pg_dump}")
    return 0


def restore(args: argparse.Namespace) -> int:
    """A backup, checked file by file, into an empty data directory."""
    from tiaojie.server.backup import BackupError
    from tiaojie.server.backup import restore as put_back
    from tiaojie.server.db import parse_database_url

    try:
        url = parse_database_url(args.database_url, args.data_dir)
        index = put_back(args.source, args.data_dir, url)
    except BackupError as error:
        print(f"tiaojie: {error}", file=sys.stderr)
        return 1 if "damaged" in str(error) else 2
    except (ValueError, OSError) as error:
        print(f"tiaojie: {error}", file=sys.stderr)
        return 2
    print(f"restored {args.source} ({index['created_at']}) into {args.data_dir}")
    if index["database"]["kind"] == "postgresql":
        dump = args.source / "tiaojie.pgdump"
        print(f"restore the database too: pg_restore --clean --dbname URL {dump}")
        print("(tiaojie serve rebuilds the archive index if that database has none)")
        return 0
    from tiaojie.server.archive_index.rebuild import rebuild_database
    from tiaojie.server.db import DatabaseError

    try:  # a database from before the archive index: index the restored files
        rebuilt = rebuild_database(url, args.data_dir, if_missing=True)
    except DatabaseError as error:
        print(f"tiaojie: the archive index was not rebuilt: {error}", file=sys.stderr)
        return 2
    if rebuilt is not None:
        print(
            f"archive index rebuilt: {rebuilt.recordings} recordings, "
            f"{rebuilt.agreements} agreements"
        )
    return 0


def reindex(args: argparse.Namespace) -> int:
    """Rebuild the archive index from the files of the data directory."""
    from tiaojie.server.archive_index.rebuild import rebuild_database
    from tiaojie.server.db import DatabaseError, parse_database_url

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        url = parse_database_url(args.database_url, args.data_dir)
        rebuilt = rebuild_database(url, args.data_dir)
    except (ValueError, DatabaseError) as error:
        print(f"tiaojie: {error}", file=sys.stderr)
        return 2
    assert rebuilt is not None
    print(
        f"archive index of {url.shown()} rebuilt from {args.data_dir}: "
        f"{rebuilt.recordings} recordings, {rebuilt.agreements} agreements"
    )
    for folder in rebuilt.unreadable:
        print(f"  not indexed (unreadable): {folder}")
    if rebuilt.elsewhere:
        print(f"  {rebuilt.elsewhere} indexed entries have no files here (another node's?)")
    return 1 if rebuilt.unreadable else 0


def _add_database_arguments(parser: argparse.ArgumentParser) -> None:
    """`--data` and `--database`, as `serve` takes them (migrate, backup, restore)."""
    parser.add_argument(
        "--data",
        dest="data_dir",
        type=Path,
        default=Path(os.environ.get("TIAOJIE_DATA") or "data"),
        help="the server's data directory (TIAOJIE_DATA; default ./data)",
    )
    parser.add_argument(
        "--database",
        dest="database_url",
        default=os.environ.get("TIAOJIE_DATABASE") or None,
        help="the database URL, as for serve (TIAOJIE_DATABASE; default sqlite:///DATA/tiaojie.db)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tiaojie", description="Video mediation rooms.")
    parser.add_argument("--version", action="version", version=f"tiaojie {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the server")
    add_serve_arguments(serve_parser)
    serve_parser.set_defaults(run=serve)

    room = commands.add_parser("new-room", help="create a room and print its invite links")
    room.add_argument("title")
    room.add_argument(
        "--server",
        default=None,
        help="the server's address (default: where serve listens: TIAOJIE_HOST, TIAOJIE_PORT, "
        "else http://127.0.0.1:8080)",
    )
    room.add_argument(
        "--data",
        dest="data_dir",
        type=Path,
        default=Path(os.environ.get("TIAOJIE_DATA") or "data"),
        help="where the server keeps its admin token (TIAOJIE_DATA; default ./data)",
    )
    room.add_argument("--mediator", default="调解员")
    room.add_argument(
        "--party",
        action="append",
        default=None,
        help="a party's name (repeat; default: 申请人, 被申请人)",
    )
    room.add_argument("--expert", action="append", default=[])
    room.add_argument("--no-lobby", action="store_true")
    room.add_argument(
        "--expires-in",
        type=int,
        default=86400,
        help="seconds the links stay valid: 60 to 2592000 (30 days; default 86400)",
    )
    room.set_defaults(run=new_room)

    draining = commands.add_parser(
        "drain",
        help="several nodes: place no new room on this node and move its rooms to other live nodes",
    )
    draining.add_argument(
        "--server",
        default=None,
        help="the node's address (default: where serve listens: TIAOJIE_HOST, TIAOJIE_PORT)",
    )
    draining.add_argument(
        "--data",
        dest="data_dir",
        type=Path,
        default=Path(os.environ.get("TIAOJIE_DATA") or "data"),
        help="where the node keeps its admin token (TIAOJIE_DATA; default ./data)",
    )
    draining.add_argument("--undo", action="store_true", help="take new rooms again")
    draining.set_defaults(run=drain)

    probe = commands.add_parser(
        "health",
        help="exit 0 when the server on this machine is up and its database answers",
    )
    probe.add_argument(
        "--url", default=None, help="the server (default: where serve listens, as configured)"
    )
    probe.add_argument("--timeout", type=float, default=4.0)
    probe.set_defaults(run=health)

    bot_parser = commands.add_parser(
        "bot", help="join by invite link, publish a file (H264+Opus) in a loop, log what arrives"
    )
    bot_parser.add_argument("link", help="the invite link (quote it: it contains #)")
    bot_parser.add_argument("--publish", type=Path, help="an MP4 with H264 video and Opus audio")
    bot_parser.add_argument("--name", help="display name (default: the invite's)")
    bot_parser.set_defaults(run=bot)

    check = commands.add_parser(
        "verify",
        help="check a recording (folder, segment MP4 or the .zip the recordings page gives), "
        "an agreement PDF or a case dossier ZIP offline",
        description="Exit 0 authentic, 1 not authentic, 2 could not run.",
    )
    check.add_argument(
        "path",
        type=Path,
        help="recording folder, segment .mp4/.webm, recording .zip, agreement .pdf or dossier .zip",
    )
    check.add_argument("--json", action="store_true", help="machine-readable report")
    check.add_argument(
        "--trust",
        type=Path,
        help="recording, its .zip and a dossier: the server's Ed25519 public key (PEM, "
        "DATA/keys/recorder_ed25519.pub.pem); PDF: trusted CA certificate(s)",
    )
    check.add_argument("--tsa-trust", type=Path, help="recording: the TSA's root certificate")
    check.add_argument("--recording", type=Path, help="PDF: the recording folder it refers to")
    check.add_argument(
        "--previous",
        type=Path,
        help="recording: the folder of the recording it follows (a lost or drained node's "
        "room moved on): the link is checked",
    )
    check.add_argument(
        "--ca",
        type=Path,
        help=".zip: the CA certificate its agreements are checked against (default: the local "
        "CA, $TIAOJIE_DATA/keys/ca.cert.pem)",
    )
    check.add_argument(
        "--lang",
        choices=("en", "zh"),
        default="zh" if (os.environ.get("LANG") or "").startswith("zh") else "en",
        help="language of the text report (default: zh when LANG is Chinese, else en)",
    )
    check.add_argument(
        "--timezone",
        default=None,
        help="time zone of the times in the text report (TIAOJIE_TIMEZONE; default "
        "Asia/Shanghai); the JSON report keeps UTC",
    )
    check.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show what the libraries log while checking (pyhanko's tracebacks)",
    )
    check.set_defaults(run=verify)

    from tiaojie.recorder.cli import add_arguments as add_record_arguments

    record = commands.add_parser(
        "record", help="record a room (the server starts this itself; see docs/ARCHIVE.md)"
    )
    add_record_arguments(record)

    archivist = commands.add_parser(
        "archivist-token",
        help="issue a token that can list, play and download recordings; list or revoke them",
        description="Tokens are registered in DATA/archivist_tokens.jsonl (id, label, "
        "issued, expires; never the token) and logged by id and label; the server refuses "
        "tokens that are not registered or were revoked.",
    )
    archivist.add_argument(
        "--label", "--name", default="archivist", help="who holds it (registered and logged)"
    )
    archivist.add_argument(
        "--days", type=int, default=30, help="valid for (default 30, at most 365 days)"
    )
    action = archivist.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the issued tokens")
    action.add_argument("--revoke", metavar="ID", help="revoke the token with this id")
    archivist.add_argument(
        "--data",
        dest="data_dir",
        type=Path,
        default=Path(os.environ.get("TIAOJIE_DATA") or "data"),
        help="the server's data directory, whose secret signs the token (default ./data)",
    )
    archivist.set_defaults(run=archivist_token)

    schema = commands.add_parser(
        "migrate", help="bring the database's schema up to date (serve does it on start)"
    )
    _add_database_arguments(schema)
    schema.set_defaults(run=migrate)

    admin = commands.add_parser(
        "create-admin",
        help="make an admin account (the first one, or another); the password is asked",
        description="The password is read from a prompt (typed twice), or with "
        "--password-stdin from the first line of stdin; never from the command line.",
    )
    admin.add_argument("login", help="the login: letters, digits and . _ @ - (e.g. a phone)")
    admin.add_argument("--name", required=True, help="the person's name, as staff pages show it")
    admin.add_argument(
        "--organisation",
        default=None,
        help="the organisation (made if there is none of that name; default: the first "
        "organisation, or a new one named 调解中心)",
    )
    admin.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    _add_database_arguments(admin)
    admin.set_defaults(run=create_admin)

    saving = commands.add_parser(
        "backup", help="copy the database, keys and archive into a new folder (server running)"
    )
    saving.add_argument("dest", type=Path, help="a new folder for the copy")
    _add_database_arguments(saving)
    saving.set_defaults(run=backup)

    putting_back = commands.add_parser(
        "restore", help="put a backup back into an empty data directory"
    )
    putting_back.add_argument("source", type=Path, help="a folder made by tiaojie backup")
    _add_database_arguments(putting_back)
    putting_back.set_defaults(run=restore)

    indexing = commands.add_parser(
        "reindex",
        help="rebuild the archive index (recordings, agreements) from the data directory's files",
        description="Reads every recording and agreement folder and writes their rows again; "
        "safe while the server runs. Exit 1 when a folder could not be read.",
    )
    _add_database_arguments(indexing)
    indexing.set_defaults(run=reindex)
    return parser


def command_names() -> set[str]:
    """The subcommands `tiaojie` knows (serve, new-room, record, verify, ...)."""
    parser = build_parser()
    return {
        name
        for action in parser._actions  # argparse has no public accessor
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "party", []) is None:
        args.party = ["申请人", "被申请人"]
    return int(args.run(args))
