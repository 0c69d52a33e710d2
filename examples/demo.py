"""``./dev demo``: a real Keycloak with the demo realm, and the Flask example app in front of it.

Keycloak listens on 127.0.0.1:8080 when that port is free (else a free port; ``KEYCLOAK_URL``
points the demo at a server you already run, with ``examples/demo-realm.json`` imported),
the app on http://127.0.0.1:5000. Ctrl-C stops both.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sys
from pathlib import Path

from kc_core.cli.dev import ProgressBar
from kc_core.testing import KeycloakServer

HERE = Path(__file__).resolve().parent
APP_PORT = int(os.environ.get("PORT", "5000"))
sys.path.insert(0, str(HERE / "flask"))

from app import create_app  # noqa: E402 - the example app lives beside this script


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def main() -> None:
    # SIGTERM (a supervisor, `kill`) must stop Keycloak too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # The Keycloak of `kc dev`: a cold cache downloads the distribution with a progress bar.
    server = KeycloakServer(
        realm_file=HERE / "demo-realm.json",
        port=8080 if _free(8080) else None,
        download_progress=ProgressBar("Keycloak"),
    )
    with server:
        realm = server.realm_info()
        app = create_app(
            {
                "KEYCLOAK_SERVER_URL": server.base_url,
                "KEYCLOAK_REALM": realm.realm,
                "KEYCLOAK_CLIENT_ID": "kc-demo",
                "KEYCLOAK_CLIENT_SECRET": "kc-demo-secret",
                # A new key at each start: the demo's sessions need not outlive it.
                "SECRET_KEY": os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32),
            }
        )
        print(
            f"""
kc demo
  app:       http://127.0.0.1:{APP_PORT}/  (profile, admin and logout pages)
  keycloak:  {server.base_url}/admin/  (admin / admin), realm {realm.realm}
  log in as: alice / alice-password  (realm roles user, admin; kc-api reader, writer)
             bob / bob-password      (user; kc-api reader)
             carol / carol-password  (no roles: /admin answers 403)
  bearer API: curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:{APP_PORT}/api/me
Press Ctrl-C to stop.
""",
            flush=True,
        )
        app.run(host="127.0.0.1", port=APP_PORT)


if __name__ == "__main__":
    main()
