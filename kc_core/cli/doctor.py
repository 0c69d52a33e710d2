"""``kc doctor``: the app's settings checked against the live Keycloak, one line per check.

Each check answers ✓ (fine), ✗ (broken, with the fix) or · (not checked, saying what it
needs). Without admin access the checks probe Keycloak's public endpoints the way a browser
and the app would; with it (``--admin-user`` or a service account holding the
``realm-management`` role ``view-clients``) they read the client's registration as well.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests

from ..errors import KeycloakError, OAuthError, TokenError, WrongAudience
from ..oidc import Client, TokenSet
from ..tokens import TokenValidator
from .settings import AppSettings

__all__ = ["Check", "DoctorOptions", "checks_as_json", "format_checks", "run_doctor"]

Status = Literal["ok", "fail", "skip"]
_MARKS: Mapping[Status, str] = {"ok": "✓", "fail": "✗", "skip": "·"}
_TIMEOUT = 10.0
_BAD_CREDENTIALS = "invalid client or invalid client credentials"
_NO_SERVICE_ACCOUNT = "not enabled to retrieve service account"
_ADMIN_HINT = (
    "needs admin access (--admin-user, or a service account with the realm-management role "
    "view-clients)"
)


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: ``name``, ``status``, what was found and how to fix it."""

    name: str
    status: Status
    summary: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class DoctorOptions:
    """What the command line adds to the app's settings."""

    #: The app's public origin (``https://shop.example``); else the settings' ``public_url``.
    app_url: str | None = None
    #: A client whose access tokens reach this app (a front end calling this API).
    caller: str | None = None
    admin_user: str | None = None
    admin_password: str | None = field(default=None, repr=False)
    admin_realm: str = "master"


def run_doctor(app: AppSettings, options: DoctorOptions) -> list[Check]:
    """Run every check of ``app`` against its Keycloak and return the lines of the report."""
    with Client(app.config) as client, requests.Session() as session:
        session.verify = app.config.ca_bundle or app.config.verify_tls
        return _Doctor(app, options, client, session).run()


def format_checks(checks: list[Check]) -> str:
    """The report as text: one line per check, its fix indented below it."""
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        lines.append(f"{_MARKS[check.status]} {check.name:<{width}}  {check.summary}")
        if check.fix:
            lines.append(f"  {'':<{width}}  fix: {check.fix}")
    return "\n".join(lines)


def checks_as_json(checks: list[Check]) -> dict[str, Any]:
    """The report for machines: ``ok`` and the checks."""
    return {"ok": all(c.status != "fail" for c in checks), "checks": [asdict(c) for c in checks]}


class _Admin:
    """Read-only admin REST API calls on the app's realm."""

    def __init__(self, session: requests.Session, base: str, realm: str, token: str) -> None:
        self._session = session
        self._root = f"{base}/admin/realms/{quote(realm, safe='')}"
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def get(self, path: str, **params: str) -> Any:
        response = self._session.get(
            self._root + path, params=params, headers=self._headers, timeout=_TIMEOUT
        )
        response.raise_for_status()
        return response.json()

    def client(self, client_id: str) -> dict[str, Any] | None:
        found = self.get("/clients", clientId=client_id)
        return found[0] if found else None

    def example_claims(self, client: Mapping[str, Any], scope: str) -> dict[str, Any] | None:
        """The claims of an access token Keycloak would issue to ``client`` now."""
        user: Any = None
        if client.get("serviceAccountsEnabled"):
            user = self.get(f"/clients/{client['id']}/service-account-user")
        else:
            users = self.get("/users", max="1", briefRepresentation="true", enabled="true")
            user = users[0] if users else None
        if not user:
            return None
        claims: dict[str, Any] = self.get(
            f"/clients/{client['id']}/evaluate-scopes/generate-example-access-token",
            scope=scope,
            userId=user["id"],
        )
        return claims


class _Doctor:
    def __init__(
        self,
        app: AppSettings,
        options: DoctorOptions,
        client: Client,
        session: requests.Session,
    ) -> None:
        self.config = app.config
        self.settings = app.engine
        self.options = options
        self.client = client
        self.session = session
        self.metadata: dict[str, Any] = {}
        self.admin: _Admin | None = None
        self.admin_note = _ADMIN_HINT
        self.registration: dict[str, Any] | None = None  # the client, read with admin access
        self.own_token: TokenSet | None = None
        # (iat, local time when received) of tokens Keycloak minted during the run.
        self.minted: list[tuple[float, float]] = []
        self.own_lifespan: float | None = None
        origin = options.app_url or self.settings.public_url
        if origin is None and self.config.redirect_uri:
            parts = urlsplit(self.config.redirect_uri)
            origin = f"{parts.scheme}://{parts.netloc}"
        self.app_url = origin.rstrip("/") if origin else None

    def run(self) -> list[Check]:
        discovery = self.check_discovery()
        if discovery.status == "fail":
            later = ("client", "audience", "redirect_uris", "backchannel", "clock", "lifespan")
            skipped = [Check(n, "skip", "not checked: fix discovery first") for n in later]
            return [discovery, *skipped, Check("pkce", "skip", "not checked: fix discovery first")]
        self.connect_admin()
        checks = [discovery, self.check_client()]
        checks.append(self.check_audience())
        checks.append(self.check_redirect_uris())
        checks.append(self.check_backchannel())
        checks.append(self.check_clock())
        checks.append(self.check_lifespan())
        checks.append(self.check_pkce())
        return checks

    # -- discovery ----------------------------------------------------------------------

    def check_discovery(self) -> Check:
        config = self.config
        url = f"{config.realm_url}/.well-known/openid-configuration"
        try:
            response = self.session.get(url, timeout=_TIMEOUT)
        except requests.RequestException as exc:
            return Check(
                "discovery",
                "fail",
                f"Keycloak does not answer at {config.server_url}: {type(exc).__name__}",
                "check server_url (KEYCLOAK_SERVER_URL): the host, the port, http or https, "
                "and that this machine reaches it",
            )
        if response.status_code == 404:
            return Check(
                "discovery",
                "fail",
                f"no realm {config.realm!r} at {config.server_url} (HTTP 404)",
                "check realm (KEYCLOAK_REALM), and server_url: Keycloak before 17 needs /auth",
            )
        if not response.ok:
            return Check("discovery", "fail", f"{url} answers HTTP {response.status_code}")
        try:
            self.metadata = dict(response.json())
        except ValueError:
            return Check("discovery", "fail", f"{url} does not answer JSON: not a Keycloak realm")
        issuer = self.metadata.get("issuer")
        accepted = {config.realm_url, *config.extra_issuers}
        if issuer not in accepted:
            return Check(
                "discovery",
                "fail",
                f"Keycloak announces the issuer {issuer}, the app expects {config.realm_url}",
                f"set server_url to {str(issuer).rsplit('/realms/', 1)[0]}, or list the issuer in "
                "extra_issuers when the app reaches Keycloak on an internal host; behind a "
                "proxy, check Keycloak's hostname setting",
            )
        return Check("discovery", "ok", f"{url} answers; issuer {issuer} as configured")

    # -- admin access ---------------------------------------------------------------------

    def connect_admin(self) -> None:
        config, options = self.config, self.options
        token: str | None = None
        if options.admin_user:
            url = f"{config.server_url}/realms/{options.admin_realm}/protocol/openid-connect/token"
            answer = self.session.post(
                url,
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": options.admin_user,
                    "password": options.admin_password or "",
                },
                timeout=_TIMEOUT,
            )
            if not answer.ok:
                self.admin_note = f"admin login as {options.admin_user!r} refused"
                return
            token = str(answer.json()["access_token"])
        elif not config.public_client and not config.bearer_only:
            self.own_token = self._client_credentials()
            token = self.own_token.access_token if self.own_token else None
        if token is None:
            return
        admin = _Admin(self.session, config.server_url, config.realm, token)
        try:
            self.registration = admin.client(config.client_id)
        except (requests.RequestException, ValueError):
            return  # a service account without view-clients: probes only
        self.admin = admin

    def _client_credentials(self) -> TokenSet | None:
        try:
            return self._client_credentials_or_raise()
        except KeycloakError:
            return None  # check_client asks again and says why

    def _minted(self, token_or_claims: str | Mapping[str, Any], *, own: bool) -> None:
        claims = (
            _unverified_claims(token_or_claims)
            if isinstance(token_or_claims, str)
            else token_or_claims
        )
        iat, exp = claims.get("iat"), claims.get("exp")
        if isinstance(iat, int | float):
            self.minted.append((float(iat), time.time()))
            if own and isinstance(exp, int | float):
                self.own_lifespan = float(exp) - float(iat)

    # -- the client -----------------------------------------------------------------------

    def check_client(self) -> Check:
        config = self.config
        name = config.client_id
        if self.admin is not None and self.registration is None:
            return Check(
                "client",
                "fail",
                f"no client {name!r} in realm {config.realm!r}",
                "check client_id (KEYCLOAK_CLIENT_ID), or create the client in Keycloak",
            )
        if config.public_client:
            if self._auth_probe(self._callback() or f"{config.server_url}/")[1] == "no-client":
                missing = f"no client {name!r} in realm {config.realm!r}"
                return Check("client", "fail", missing, "check client_id (KEYCLOAK_CLIENT_ID)")
            return Check("client", "ok", f"public client {name!r} exists (no secret to check)")
        if self.own_token is not None:
            return Check("client", "ok", f"{name!r} authenticates (service account token issued)")
        try:
            self.own_token = self._client_credentials_or_raise()
        except OAuthError as exc:
            description = (exc.error_description or "").lower()
            if _NO_SERVICE_ACCOUNT in description:
                return Check("client", "ok", f"{name!r} exists and its credentials are accepted")
            if _BAD_CREDENTIALS in description or exc.error == "invalid_client":
                return Check(
                    "client",
                    "fail",
                    f"Keycloak refuses the credentials of {name!r}: a wrong client_secret, "
                    "or no such client",
                    f"copy Clients > {name} > Credentials > Client Secret into client_secret "
                    "(KEYCLOAK_CLIENT_SECRET); check client_id",
                )
            return Check("client", "fail", f"the token endpoint refuses {name!r}: {exc}")
        except KeycloakError as exc:
            return Check("client", "fail", f"the token endpoint failed: {exc}")
        return Check("client", "ok", f"{name!r} authenticates (service account token issued)")

    def _client_credentials_or_raise(self) -> TokenSet:
        tokens = self.client.client_credentials()
        self._minted(tokens.access_token, own=True)
        return tokens

    # -- audience -------------------------------------------------------------------------

    def check_audience(self) -> Check:
        config = self.config
        if config.expected_audience is None:
            return Check(
                "audience",
                "ok",
                "audience check off (verify_token_audience false): every client's tokens pass",
            )
        validator = self.client.validator
        if config.bearer_only and self.options.caller is None:
            return Check(
                "audience",
                "skip",
                "not checked: name a client whose tokens reach this API with --caller CLIENT",
            )
        caller = self.options.caller or config.client_id
        if caller == config.client_id and self.own_token is not None:
            return self._judge_token(validator, self.own_token.access_token, caller)
        if self.admin is None:
            return Check(
                "audience",
                "skip",
                f"not checked: a token of {caller!r} {_ADMIN_HINT}",
            )
        try:
            registration = self.admin.client(caller)
            if registration is None:
                return Check("audience", "fail", f"no client {caller!r} (--caller) in the realm")
            claims = self.admin.example_claims(registration, " ".join(config.scopes))
        except (requests.RequestException, ValueError) as exc:
            return Check("audience", "skip", f"not checked: no example token of {caller!r}: {exc}")
        if claims is None:
            return Check("audience", "skip", f"not checked: no user to mint a {caller!r} token for")
        self._minted(claims, own=caller == config.client_id)
        refusal = validator.audience_refusal(claims)
        if refusal is None:
            return Check("audience", "ok", f"tokens of {caller!r} {self._admitted(claims)}")
        return self._audience_failure(refusal, caller)

    def _judge_token(self, validator: TokenValidator, token: str, caller: str) -> Check:
        try:
            claims = validator.validate(token)
        except WrongAudience as exc:
            return self._audience_failure(exc, caller)
        except TokenError as exc:
            return Check("audience", "fail", f"a fresh token of {caller!r} is refused: {exc}")
        return Check("audience", "ok", f"tokens of {caller!r} {self._admitted(claims)}")

    def _admitted(self, claims: Mapping[str, Any]) -> str:
        audience = self.config.expected_audience
        aud = claims.get("aud")
        named = [aud] if isinstance(aud, str) else list(aud or [])
        if audience in named:
            return f"name {audience!r} in aud: the app accepts them"
        return f"are accepted by azp {claims.get('azp')!r}"

    @staticmethod
    def _audience_failure(refusal: WrongAudience, caller: str) -> Check:
        text = str(refusal)
        summary, _, fix = text.partition(". Fix: ")
        return Check(
            "audience",
            "fail",
            f"tokens of {caller!r} are refused: {summary.removeprefix('the token is ')}",
            fix or None,
        )

    # -- redirect URIs --------------------------------------------------------------------

    def _callback(self) -> str | None:
        if self.config.redirect_uri:
            return self.config.redirect_uri
        return f"{self.app_url}{self.settings.callback_path}" if self.app_url else None

    def _auth_probe(self, redirect_uri: str, *, pkce: bool = True) -> tuple[int, str]:
        """Ask Keycloak's authorization endpoint to start a login as the app would."""
        params = {
            "client_id": self.config.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(self.config.scopes),
            "state": "kc-doctor",
        }
        if pkce:
            params["code_challenge"] = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
            params["code_challenge_method"] = "S256"
        endpoint = str(self.metadata.get("authorization_endpoint"))
        answer = self.session.get(endpoint, params=params, allow_redirects=False, timeout=_TIMEOUT)
        text = answer.text if answer.status_code == 400 else ""
        if "Invalid parameter: redirect_uri" in text:
            return answer.status_code, "bad-redirect"
        if "Client not found" in text:
            return answer.status_code, "no-client"
        location = answer.headers.get("Location", "")
        if "code_challenge" in location and "error=" in location:
            return answer.status_code, "pkce-required"
        return answer.status_code, "login" if answer.status_code in (200, 302) else text[:80]

    def check_redirect_uris(self) -> Check:
        config = self.config
        if config.bearer_only:
            return Check("redirect_uris", "ok", "bearer-only client: no browser login")
        callback = self._callback()
        if callback is None:
            return Check(
                "redirect_uris",
                "skip",
                "not checked: the app's URL is unknown (--app-url, or set public_url)",
            )
        registered = ""
        if self.registration is not None:
            uris = ", ".join(self.registration.get("redirectUris", [])) or "none"
            registered = f" (registered now: {uris})"
        name = config.client_id
        try:
            _, outcome = self._auth_probe(callback)
        except requests.RequestException as exc:
            return Check("redirect_uris", "fail", f"the authorization endpoint failed: {exc}")
        if outcome == "bad-redirect":
            return Check(
                "redirect_uris",
                "fail",
                f'Keycloak refuses the callback {callback}: "Invalid parameter: redirect_uri"',
                f"Clients > {name} > Settings > Valid redirect URIs: add {callback}{registered}",
            )
        after_logout = self.settings.after_logout_url
        if not urlsplit(after_logout).scheme:
            after_logout = (
                f"{urlsplit(callback).scheme}://{urlsplit(callback).netloc}{after_logout}"
            )
        endpoint = self.metadata.get("end_session_endpoint")
        if endpoint:
            answer = self.session.get(
                str(endpoint),
                params={"client_id": name, "post_logout_redirect_uri": after_logout},
                allow_redirects=False,
                timeout=_TIMEOUT,
            )
            if answer.status_code == 400 and "invalid redirect uri" in answer.text.lower():
                return Check(
                    "redirect_uris",
                    "fail",
                    f"Keycloak refuses the post-logout URI {after_logout}",
                    f"Clients > {name} > Settings > Valid post logout redirect URIs: add "
                    f"{after_logout} (or + for the redirect URIs)",
                )
        return Check(
            "redirect_uris", "ok", f"callback {callback} and post-logout {after_logout} accepted"
        )

    # -- back-channel logout --------------------------------------------------------------

    def check_backchannel(self) -> Check:
        config = self.config
        if config.bearer_only:
            return Check("backchannel", "ok", "bearer-only client: no sessions to end")
        if self.registration is None:
            return Check("backchannel", "skip", f"not checked: {self.admin_note}")
        expected = (
            f"{self.app_url}{self.settings.backchannel_logout_path}" if self.app_url else None
        )
        url = str(self.registration.get("attributes", {}).get("backchannel.logout.url") or "")
        where = (
            f"Clients > {config.client_id} > Settings > Logout settings > Backchannel logout URL"
        )
        wanted = expected or f"https://APP{self.settings.backchannel_logout_path}"
        if not url:
            return Check(
                "backchannel",
                "fail",
                "no back-channel logout URL: a logout in Keycloak leaves the app's sessions alive",
                f"{where}: {wanted}",
            )
        if expected is not None and url != expected:
            return Check(
                "backchannel",
                "fail",
                f"the back-channel logout URL {url} is not the app's {expected}",
                f"{where}: {expected}",
            )
        if expected is None and not url.endswith(self.settings.backchannel_logout_path):
            return Check(
                "backchannel",
                "fail",
                f"the back-channel logout URL {url} does not end with "
                f"{self.settings.backchannel_logout_path}",
                f"{where}: {wanted}",
            )
        return Check("backchannel", "ok", f"back-channel logout URL {url}")

    # -- clock --------------------------------------------------------------------------

    def check_clock(self) -> Check:
        if not self.minted:
            return Check(
                "clock",
                "skip",
                "not checked: no token was minted (service account or admin access)",
            )
        # iat is whole seconds, rounded down: half a second is the fairest estimate.
        skew = max((received - iat - 0.5 for iat, received in self.minted), key=abs)
        leeway = self.config.leeway
        side = "ahead of" if skew > 0 else "behind"
        if abs(skew) > leeway:
            return Check(
                "clock",
                "fail",
                f"this machine's clock is {abs(skew):.0f} s {side} Keycloak's "
                f"(leeway {leeway:g} s): fresh tokens look expired or issued in the future",
                "synchronise both clocks (NTP, chrony, systemd-timesyncd)",
            )
        return Check(
            "clock", "ok", f"clock within {abs(skew):.0f} s of Keycloak's (leeway {leeway:g} s)"
        )

    # -- lifespans ------------------------------------------------------------------------

    def check_lifespan(self) -> Check:
        config = self.config
        if config.bearer_only:
            return Check("lifespan", "ok", "bearer-only client: nothing to refresh")
        lifespan = self.own_lifespan
        sessions = ""
        realm: dict[str, Any] = {}
        if self.admin is not None:
            try:
                realm = self.admin.get("")
            except (requests.RequestException, ValueError):
                realm = {}
        attributes = (self.registration or {}).get("attributes", {})
        if lifespan is None:
            configured = attributes.get("access.token.lifespan") or realm.get("accessTokenLifespan")
            lifespan = float(configured) if configured else None
        if lifespan is None:
            return Check("lifespan", "skip", f"not checked: {self.admin_note}")
        idle = attributes.get("client.session.idle.timeout") or realm.get("ssoSessionIdleTimeout")
        longest = attributes.get("client.session.max.lifespan") or realm.get(
            "ssoSessionMaxLifespan"
        )
        if idle and longest:
            sessions = f"; sessions idle {float(idle):g} s, at most {float(longest):g} s"
        margin = self.settings.refresh_margin
        if margin >= lifespan:
            return Check(
                "lifespan",
                "fail",
                f"refresh_margin {margin:g} s >= access token lifespan {lifespan:g} s: "
                "every request refreshes the session",
                f"set refresh_margin (KEYCLOAK_REFRESH_MARGIN) well below {lifespan:g} s "
                "(default 30), or raise Realm settings > Tokens > Access Token Lifespan "
                f"(or Clients > {config.client_id} > Advanced > Access Token Lifespan)",
            )
        return Check(
            "lifespan",
            "ok",
            f"access tokens live {lifespan:g} s, refreshed {margin:g} s before expiry{sessions}",
        )

    # -- PKCE -----------------------------------------------------------------------------

    def check_pkce(self) -> Check:
        config = self.config
        if not config.public_client:
            return Check("pkce", "ok", "confidential client: kc sends PKCE (S256) on every login")
        name = config.client_id
        fix = (
            f"Clients > {name} > Advanced > Advanced settings > Proof Key for Code Exchange "
            "Code Challenge Method: S256"
        )
        if self.registration is not None:
            method = self.registration.get("attributes", {}).get("pkce.code.challenge.method")
            if method == "S256":
                return Check("pkce", "ok", "public client: Keycloak requires PKCE (S256)")
            return Check("pkce", "fail", "public client without required PKCE", fix)
        callback = self._callback()
        if callback is None:
            return Check("pkce", "skip", "not checked: the app's URL is unknown (--app-url)")
        _, outcome = self._auth_probe(callback, pkce=False)
        if outcome == "pkce-required":
            return Check("pkce", "ok", "public client: Keycloak requires PKCE")
        return Check("pkce", "fail", "public client: Keycloak starts logins without PKCE", fix)


def _unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a token just received from Keycloak, for its iat and exp only."""
    import base64
    import json

    try:
        part = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
