"""The ``kc`` command: ``kc doctor``, ``kc token``, ``kc decode``, ``kc dev``.

Every subcommand reads the app's own settings (``KEYCLOAK_*`` variables and
``keycloak.json``, or ``--django``/``--flask``/``--pyramid``); see docs/cli.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from ..errors import ConfigError
from .settings import AppSettings, load_app_settings

__all__ = ["main"]


def _settings_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where the app's settings are (default: the environment)")
    sources = group.add_mutually_exclusive_group()
    sources.add_argument("--django", metavar="MODULE", help="Django settings, e.g. mysite.settings")
    sources.add_argument(
        "--flask", metavar="MODULE:APP", help="Flask app (or factory), e.g. app:app"
    )
    sources.add_argument("--pyramid", metavar="INI", help="Pyramid settings, e.g. development.ini")
    sources.add_argument("--settings-file", metavar="FILE", help="a keycloak.json file")
    group.add_argument("--client-id", help="another client of the realm than the app's")
    group.add_argument("--client-secret", help="that client's secret")
    group.add_argument("--public", action="store_true", help="that client is public")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kc", description="Keycloak for Python apps.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = commands.add_parser("doctor", help="check the app's settings against Keycloak")
    _settings_options(doctor)
    doctor.add_argument("--app-url", help="the app's public origin, e.g. https://shop.example")
    doctor.add_argument("--caller", metavar="CLIENT", help="a client whose tokens reach this app")
    doctor.add_argument("--admin-user", help="a Keycloak admin (reads the client's registration)")
    doctor.add_argument("--admin-password", help="that admin's password (or $KC_ADMIN_PASSWORD)")
    doctor.add_argument("--admin-realm", default="master", help="the admin's realm (master)")
    doctor.add_argument("--json", action="store_true", help="the report as JSON")

    token = commands.add_parser("token", help="get a token from Keycloak")
    _settings_options(token)
    grant = token.add_mutually_exclusive_group(required=True)
    grant.add_argument("--device", action="store_true", help="device flow: open a URL, type a code")
    grant.add_argument("--password", action="store_true", help="password grant (--username)")
    grant.add_argument("--client-credentials", action="store_true", help="the client's own token")
    token.add_argument(
        "--username", help="for --password; the password is read from KC_PASSWORD or asked"
    )
    token.add_argument("--scope", action="append", help="a scope to ask for (repeatable)")
    token.add_argument("--json", action="store_true", help="every token of the answer, as JSON")

    decode = commands.add_parser("decode", help="show a token and whether the app accepts it")
    _settings_options(decode)
    decode.add_argument("token", help="the token (- reads it from standard input)")
    decode.add_argument("--leeway", type=float, help="seconds of clock skew allowed (settings: 10)")
    decode.add_argument("--json", action="store_true", help="the result as JSON")

    dev = commands.add_parser("dev", help="run a local Keycloak with a realm")
    dev.add_argument(
        "--realm", metavar="FILE", help="realm JSON (default: examples/demo-realm.json)"
    )
    dev.add_argument("--port", type=int, help="HTTP port (default 8080 when free)")
    dev.add_argument("--version", dest="keycloak_version", help="Keycloak version")
    dev.add_argument("--cache-dir", help="where the distribution is kept")
    return parser


def app_settings(args: argparse.Namespace) -> AppSettings:
    """The settings the options name, with ``--client-id`` and friends applied."""
    app = load_app_settings(
        django=args.django, flask=args.flask, pyramid=args.pyramid, settings_file=args.settings_file
    )
    if args.client_id or args.client_secret or args.public:
        changes: dict[str, object] = {}
        if args.client_id:
            changes["client_id"] = args.client_id
        if args.public:
            changes.update(public_client=True, client_secret=None, client_auth_method="none")
        elif args.client_secret:
            changes["client_secret"] = args.client_secret
        app = AppSettings(app.config.replace(**changes), app.engine, app.source)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kc`` with ``argv`` (default: the command line); return the exit status."""
    args = _parser().parse_args(argv)
    # The report says what went wrong; kc's operator warnings would repeat it on stderr.
    logging.getLogger("kc_core").addHandler(logging.NullHandler())
    try:
        if args.command == "dev":
            from .dev import run_dev

            return run_dev(args)
        from . import tokens

        if args.command == "decode":
            try:
                known: AppSettings | None = app_settings(args)
            except ConfigError:
                known = None  # the token is still shown, its verdict says what was not checked
            return tokens.run_decode(known, args)
        app = app_settings(args)
        if args.command == "doctor":
            return _doctor(app, args)
        return tokens.run_token(app, args)
    except ConfigError as exc:
        if getattr(args, "json", False) and args.command == "doctor":
            failure = {"name": "settings", "status": "fail", "summary": str(exc), "fix": None}
            print(json.dumps({"ok": False, "checks": [failure]}, indent=2))
        else:
            print(f"✗ settings  {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _doctor(app: AppSettings, args: argparse.Namespace) -> int:
    from .doctor import DoctorOptions, checks_as_json, format_checks, run_doctor

    options = DoctorOptions(
        app_url=args.app_url,
        caller=args.caller,
        admin_user=args.admin_user,
        admin_password=args.admin_password or os.environ.get("KC_ADMIN_PASSWORD"),
        admin_realm=args.admin_realm,
    )
    checks = run_doctor(app, options)
    failed = any(c.status == "fail" for c in checks)
    if args.json:
        report = checks_as_json(checks)
        report["source"] = app.source
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(
            f"kc doctor: client {app.config.client_id!r} of {app.config.realm_url} ({app.source})"
        )
        print(format_checks(checks))
    return 1 if failed else 0
