"""kc_core alone, no web framework: a service account's token, checked, then used.

It asks Keycloak for the client's own token (client credentials), validates it locally
(signature, issuer, audience, expiry), reads a client role from it, calls userinfo with
it, revokes it and shows that Keycloak then refuses it. Run it against the test realm (the
defaults below) or any realm, configured the usual way (``KEYCLOAK_*`` variables or
``keycloak.json``)::

    python examples/core_script.py
    KEYCLOAK_SERVER_URL=https://sso.example.com KEYCLOAK_REALM=shop \\
        KEYCLOAK_CLIENT_ID=reporter KEYCLOAK_CLIENT_SECRET=... KEYCLOAK_AUDIENCE=orders-api \\
        python examples/core_script.py
"""

from __future__ import annotations

import os
import sys
import time

from kc_core import Client, Config, KeycloakError
from kc_core.errors import OAuthError

# The test realm shipped in kc_core/testing/realm.json; any KEYCLOAK_* variable wins.
DEFAULTS = {
    "KEYCLOAK_SERVER_URL": "http://127.0.0.1:18080",
    "KEYCLOAK_REALM": "kc-test",
    "KEYCLOAK_CLIENT_ID": "kc-service",
    "KEYCLOAK_CLIENT_SECRET": "kc-service-secret",
    "KEYCLOAK_AUDIENCE": "kc-api",
}


def main() -> int:
    config = Config.load(environ={**DEFAULTS, **os.environ})
    with Client(config) as client:
        try:
            tokens = client.client_credentials(scopes=["openid"])
            lifetime = tokens.expires_at - time.time()
            print(f"token for {config.client_id}, valid for {lifetime:.0f} s")
            print(f"scopes: {' '.join(sorted(tokens.scopes))}")

            claims = client.validate_access_token(tokens.access_token)
            print(f"validated: sub={claims['sub']} azp={claims.get('azp')} aud={claims['aud']}")
            audience = config.expected_audience or config.client_id
            print(f"has {audience}:reader: {client.has_role(claims, f'{audience}:reader')}")

            userinfo = client.fetch_userinfo(tokens.access_token)
            print(f"userinfo: preferred_username={userinfo.get('preferred_username')}")

            client.revoke(tokens.access_token, token_type_hint="access_token")
            try:
                client.fetch_userinfo(tokens.access_token)
            except OAuthError as exc:
                print(f"after revocation userinfo says: {exc.error}")
        except KeycloakError as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
