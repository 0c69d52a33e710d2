"""``kc token`` (device flow, password, client credentials) and ``kc decode``."""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import sys
import time
from typing import Any

from ..errors import KeycloakError, TokenError
from ..metrics import reason_label
from ..oidc import Client, TokenSet
from .settings import AppSettings

__all__ = ["decode_token", "run_decode", "run_token"]


def run_token(app: AppSettings, args: argparse.Namespace) -> int:
    """Get a token as ``args`` say; print the access token (or all tokens, ``--json``)."""
    scopes = args.scope
    with Client(app.config) as client:
        try:
            tokens = _grant(client, args, scopes)
        except KeycloakError as exc:
            print(f"✗ Keycloak refused: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(_token_json(tokens), indent=2))
    else:
        print(tokens.access_token)
    return 0


def _grant(client: Client, args: argparse.Namespace, scopes: list[str] | None) -> TokenSet:
    if args.client_credentials:
        return client.client_credentials(scopes)
    if args.password:
        username = args.username or input("username: ")
        password = os.environ.get("KC_PASSWORD") or getpass.getpass(f"password of {username}: ")
        return client.password_grant(username, password, scopes=scopes)
    device = client.start_device_authorization(scopes)
    # Standard error: standard output carries only the token, for $(kc token --device).
    print(f"Open {device.verification_uri} and enter the code {device.user_code}", file=sys.stderr)
    if device.verification_uri_complete:
        print(f"  (or open {device.verification_uri_complete})", file=sys.stderr)
    print("Waiting for the approval ...", file=sys.stderr, flush=True)
    return client.poll_device_authorization(device)


def _token_json(tokens: TokenSet) -> dict[str, Any]:
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "id_token": tokens.id_token,
        "token_type": tokens.get("token_type"),
        "expires_in": tokens.get("expires_in"),
        "scope": tokens.get("scope"),
    }


def decode_token(token: str, app: AppSettings | None, leeway: float | None) -> dict[str, Any]:
    """A token's header and claims and the verdict of the app's validator on it.

    ``verdict`` is ``valid``, ``refused`` (with ``reason``, the refusal's class in snake
    case, and ``message``), ``unverified`` (Keycloak's keys unreachable, or no settings) or
    ``malformed``.
    """
    result: dict[str, Any] = {"header": None, "claims": None}
    try:
        result["header"], result["claims"] = (_part(p) for p in token.split(".")[:2])
    except ValueError:
        return _verdict(result, "malformed", "not a JWT: three base64url parts expected")
    if app is None:
        return _verdict(
            result, "unverified", "no app settings (KEYCLOAK_*): signature and audience unchecked"
        )
    config = app.config if leeway is None else app.config.replace(leeway=leeway)
    with Client(config) as client:
        try:
            client.validator.validate(token)
        except TokenError as exc:
            return _verdict(result, "refused", str(exc), reason_label(exc))
        except KeycloakError as exc:
            return _verdict(result, "unverified", f"Keycloak's keys are unreachable: {exc}")
    accepted = f"accepted by client {config.client_id!r} of {config.realm_url}"
    return _verdict(result, "valid", accepted)


def _verdict(
    result: dict[str, Any], verdict: str, message: str, reason: str | None = None
) -> dict[str, Any]:
    if verdict == "malformed":
        reason = "malformed_token"
    return {**result, "verdict": verdict, "reason": reason, "message": message}


def run_decode(app: AppSettings | None, args: argparse.Namespace) -> int:
    """Print what ``kc decode`` finds; exit 0 only for a valid token."""
    token = sys.stdin.read().strip() if args.token == "-" else args.token.strip()
    result = decode_token(token, app, args.leeway)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        for part in ("header", "claims"):
            if result[part] is not None:
                print(f"{part}:\n{json.dumps(result[part], indent=2, ensure_ascii=False)}")
        claims = result["claims"] or {}
        times = [
            f"{name} {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(claims[name]))}"
            for name in ("iat", "exp")
            if isinstance(claims.get(name), int | float)
        ]
        reason = f" ({result['reason']})" if result["reason"] else ""
        mark = "✓" if result["verdict"] == "valid" else "✗"
        print(f"{mark} {result['verdict']}{reason}: {result['message']}")
        if times:
            print(f"  {', '.join(times)}")
    return 0 if result["verdict"] == "valid" else 1


def _part(part: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64url JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data
