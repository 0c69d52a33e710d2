"""Drive Keycloak's real HTML login pages with ``requests``, like a browser without JavaScript.

:func:`login_with_form` logs a user in through the authorization endpoint (or through an app
that redirects there) and returns the authorization code or the app's final response.
:func:`submit_device_code` approves a device authorization grant as the user would.
Both parse the pages with the standard library's :mod:`html.parser`.

Keycloak marks its cookies ``Secure`` even on plain HTTP; browsers still send them to loopback
hosts, ``requests`` does not. :class:`BrowserSession` (used by default) behaves like a browser.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import requests

if TYPE_CHECKING:
    from kc_core.testing.server import KeycloakRealm

__all__ = [
    "BrowserSession",
    "FormLoginError",
    "FormLoginResult",
    "HtmlForm",
    "KeycloakPage",
    "RealmLogin",
    "login_with_form",
    "parse_page",
    "submit_device_code",
    "submit_form",
]

_TIMEOUT = 10.0
# Keycloak answers some endpoints (e.g. the device page) as an API unless it is asked for HTML.
_BROWSER_HEADERS = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
_MAX_REDIRECTS = 20
_MAX_PAGES = 10
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_VOID_ELEMENTS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.local"})
# Nothing listens on the discard port: the helper never requests the redirect URI anyway.
DEFAULT_REDIRECT_URI = "http://127.0.0.1:9/callback"


class FormLoginError(Exception):
    """Keycloak showed a page the helper cannot get past (wrong password, disabled user...).

    ``message`` is the error text Keycloak showed, ``page_id`` the template
    (e.g. ``login-login``, ``login-error``), ``url``/``status_code`` where it happened.
    """

    def __init__(self, message: str, *, url: str, status_code: int, page_id: str | None) -> None:
        super().__init__(f"{message} (page {page_id or 'unknown'}, HTTP {status_code}, {url})")
        self.message = message
        self.url = url
        self.status_code = status_code
        self.page_id = page_id


@dataclass(frozen=True, slots=True)
class FormLoginResult:
    """Outcome of :func:`login_with_form`.

    With ``stop_at``: ``url`` is the redirect to the app (never requested), ``code``/``state``
    (or ``error``/``error_description``) come from its query or fragment, and ``response`` is
    Keycloak's redirect response. Without: ``response`` is the app's final response.
    """

    url: str
    response: requests.Response
    session: requests.Session
    params: Mapping[str, str] = field(default_factory=dict)
    redirect_uri: str | None = None
    code_verifier: str | None = None

    @property
    def code(self) -> str | None:
        """The authorization code, if the redirect carried one."""
        return self.params.get("code")

    @property
    def state(self) -> str | None:
        """The ``state`` echoed back by Keycloak."""
        return self.params.get("state")

    @property
    def error(self) -> str | None:
        """The OAuth ``error`` of the redirect (e.g. ``login_required`` for ``prompt=none``)."""
        return self.params.get("error")

    @property
    def error_description(self) -> str | None:
        """The OAuth ``error_description`` of the redirect."""
        return self.params.get("error_description")


@dataclass(frozen=True, slots=True)
class HtmlForm:
    """One ``<form>``: where it posts and the fields a browser would send by default."""

    id: str | None
    action: str
    method: str
    fields: Mapping[str, str]
    buttons: Mapping[str, str]

    def has_field(self, name: str) -> bool:
        """Whether the form has an input called ``name``."""
        return name in self.fields


@dataclass(frozen=True, slots=True)
class KeycloakPage:
    """What :func:`parse_page` found in an HTML page."""

    url: str
    page_id: str | None
    title: str
    messages: tuple[str, ...]
    forms: tuple[HtmlForm, ...]

    @property
    def is_keycloak(self) -> bool:
        """Whether the page was rendered by a Keycloak login theme."""
        return self.page_id is not None or any((f.id or "").startswith("kc-") for f in self.forms)

    @property
    def message(self) -> str:
        """The error/info messages of the page in one line (or its title)."""
        return " ".join(self.messages) or self.title

    def form_with_field(self, name: str) -> HtmlForm | None:
        """The first form that has an input called ``name``."""
        return next((form for form in self.forms if form.has_field(name)), None)

    def form_by_id(self, form_id: str) -> HtmlForm | None:
        """The form with ``id=form_id``."""
        return next((form for form in self.forms if form.id == form_id), None)


class BrowserSession(requests.Session):
    """A ``requests.Session`` that sends ``Secure`` cookies to loopback hosts over HTTP.

    Browsers treat ``http://localhost`` and ``http://127.0.0.1`` as secure contexts; Keycloak
    relies on that for its login cookies. Use it for adapter tests against local apps too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.headers.update(_BROWSER_HEADERS)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response = super().send(request, **kwargs)
        _relax_loopback_cookies(self)
        return response


def login_with_form(
    auth_url: str,
    username: str,
    password: str,
    *,
    session: requests.Session | None = None,
    stop_at: str | None = None,
    consent: bool = True,
    timeout: float = _TIMEOUT,
) -> FormLoginResult:
    """Open ``auth_url``, sign in on Keycloak's login form and follow the redirects.

    ``auth_url`` is an authorization URL or any app URL that redirects to Keycloak. With
    ``stop_at`` (a redirect URI prefix), stops at the first redirect to it without requesting
    it and returns its ``code``/``state``; without, follows every redirect and returns the final
    response (the app's page). Consent pages are accepted unless ``consent`` is False.
    If Keycloak already has a session for ``session``, no form is shown and that is fine.

    Raises :class:`FormLoginError` with Keycloak's message when login fails, for example::

        result = login_with_form(url, "alice", "alice-password", stop_at="http://127.0.0.1:1/cb")
        tokens = requests.post(token_url, data={"code": result.code, ...})
    """
    browser = session if session is not None else BrowserSession()
    response, stopped = _follow(browser, _get(browser, auth_url, timeout), stop_at, timeout)
    credentials_sent = False
    for _ in range(_MAX_PAGES):
        if stopped is not None:
            return _result(stopped, response, browser)
        page = parse_page(response)
        if not page.is_keycloak:
            if stop_at is not None:
                raise _page_error(page, response, f"left Keycloak without reaching {stop_at}")
            return FormLoginResult(url=response.url, response=response, session=browser)
        login_form = page.form_with_field("password")
        if login_form is not None and login_form.has_field("username"):
            if credentials_sent:
                raise _page_error(page, response, "login form shown again")
            credentials_sent = True
            response = submit_form(
                browser,
                login_form,
                {"username": username, "password": password},
                timeout=timeout,
            )
        elif _is_consent(page):
            response = _answer_consent(browser, page, response, consent, timeout)
        else:
            raise _page_error(page, response, "unexpected page")
        response, stopped = _follow(browser, response, stop_at, timeout)
    raise _page_error(parse_page(response), response, "too many pages")


def submit_device_code(
    verification_uri: str,
    user_code: str,
    username: str,
    password: str,
    *,
    session: requests.Session | None = None,
    approve: bool = True,
    timeout: float = _TIMEOUT,
) -> KeycloakPage:
    """Approve (or deny) a device authorization request as the user would in a browser.

    Works with ``verification_uri`` (the user code is typed in) or
    ``verification_uri_complete``. Signs in, answers the consent page and returns the final
    page ("Device Login Successful"); raises :class:`FormLoginError` on any error page.
    """
    browser = session if session is not None else BrowserSession()
    response, _ = _follow(browser, _get(browser, verification_uri, timeout), None, timeout)
    credentials_sent = code_sent = False
    for _ in range(_MAX_PAGES):
        page = parse_page(response)
        code_form = page.form_with_field("device_user_code")
        login_form = page.form_with_field("password")
        if code_form is not None and not code_sent:
            code_sent = True
            response = submit_form(
                browser, code_form, {"device_user_code": user_code}, timeout=timeout
            )
        elif login_form is not None and not credentials_sent:
            credentials_sent = True
            response = submit_form(
                browser,
                login_form,
                {"username": username, "password": password},
                timeout=timeout,
            )
        elif _is_consent(page):
            response = _answer_consent(browser, page, response, approve, timeout)
        elif response.ok and not page.forms and page.page_id != "login-error":
            return page
        else:
            raise _page_error(page, response, "device verification failed")
        response, _ = _follow(browser, response, None, timeout)
    raise _page_error(parse_page(response), response, "too many pages")


def submit_form(
    session: requests.Session,
    form: HtmlForm,
    values: Mapping[str, str],
    *,
    button: str | None = None,
    timeout: float = _TIMEOUT,
) -> requests.Response:
    """Submit ``form`` with its default fields overridden by ``values``; don't follow redirects.

    ``button`` names the submit button to press (its name/value is sent, as a browser does).
    """
    data = dict(form.fields)
    data.update(values)
    if button is not None:
        data[button] = form.buttons.get(button, "")
    if form.method == "get":
        response = session.get(
            form.action,
            params=data,
            headers=_BROWSER_HEADERS,
            allow_redirects=False,
            timeout=timeout,
        )
    else:
        response = session.post(
            form.action, data=data, headers=_BROWSER_HEADERS, allow_redirects=False, timeout=timeout
        )
    _relax_loopback_cookies(session)
    return response


def parse_page(response: requests.Response) -> KeycloakPage:
    """Parse the forms, page id, title and error messages of an HTML response."""
    parser = _PageParser(response.url)
    if "html" in response.headers.get("Content-Type", "html"):
        parser.feed(response.text)
        parser.close()
    return KeycloakPage(
        url=response.url,
        page_id=parser.page_id,
        title=" ".join(parser.title.split()),
        messages=tuple(dict.fromkeys(m for m in parser.messages if m)),
        forms=tuple(parser.forms),
    )


def _get(session: requests.Session, url: str, timeout: float) -> requests.Response:
    response = session.get(url, headers=_BROWSER_HEADERS, allow_redirects=False, timeout=timeout)
    _relax_loopback_cookies(session)
    return response


def _follow(
    session: requests.Session, response: requests.Response, stop_at: str | None, timeout: float
) -> tuple[requests.Response, str | None]:
    """Follow redirects; return the last response and the redirect URL if ``stop_at`` hit."""
    for _ in range(_MAX_REDIRECTS):
        if response.status_code not in _REDIRECT_STATUSES:
            return response, None
        location = urljoin(response.url, response.headers["Location"])
        if stop_at is not None and location.startswith(stop_at):
            return response, location
        response = _get(session, location, timeout)
    raise FormLoginError(
        "too many redirects", url=response.url, status_code=response.status_code, page_id=None
    )


def _result(url: str, response: requests.Response, session: requests.Session) -> FormLoginResult:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    params.update(parse_qsl(parts.fragment))  # response_mode=fragment
    return FormLoginResult(url=url, response=response, session=session, params=params)


def _is_consent(page: KeycloakPage) -> bool:
    return page.page_id == "login-login-oauth-grant" or page.form_by_id("kc-oauth") is not None


def _answer_consent(
    session: requests.Session,
    page: KeycloakPage,
    response: requests.Response,
    accept: bool,
    timeout: float,
) -> requests.Response:
    form = page.form_by_id("kc-oauth") or page.form_with_field("code")
    if form is None:
        raise _page_error(page, response, "consent page without a form")
    return submit_form(session, form, {}, button="accept" if accept else "cancel", timeout=timeout)


def _page_error(page: KeycloakPage, response: requests.Response, fallback: str) -> FormLoginError:
    message = page.message if page.messages else f"{fallback}: {page.title or 'no title'}"
    return FormLoginError(
        message, url=response.url, status_code=response.status_code, page_id=page.page_id
    )


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _relax_loopback_cookies(session: requests.Session) -> None:
    for cookie in session.cookies:
        if cookie.secure and _is_loopback(cookie.domain.lstrip(".")):
            cookie.secure = False


class _PageParser(HTMLParser):
    """Collects forms, the theme's page id, the title and error/feedback messages."""

    def __init__(self, base_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base_url = base_url
        self.forms: list[HtmlForm] = []
        self.page_id: str | None = None
        self.title = ""
        self.messages: list[str] = []
        self._form: dict[str, Any] | None = None
        self._select: str | None = None
        self._capture: list[list[Any]] = []  # [tag, depth, kind, text parts]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        for capture in self._capture:
            if capture[0] == tag and tag not in _VOID_ELEMENTS:
                capture[1] += 1
        if tag == "body" and attributes.get("data-page-id"):
            self.page_id = attributes["data-page-id"]
        if tag == "form":
            self._form = {
                "id": attributes.get("id"),
                "action": urljoin(self.base_url, attributes.get("action") or self.base_url),
                "method": (attributes.get("method") or "get").lower(),
                "fields": {},
                "buttons": {},
            }
        elif self._form is not None:
            self._form_element(tag, attributes)
        kind = _capture_kind(tag, attributes)
        if kind is not None and tag not in _VOID_ELEMENTS:
            self._capture.append([tag, 1, kind, []])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._form is not None:
            self.forms.append(HtmlForm(**self._form))
            self._form = None
        if tag == "select":
            self._select = None
        for capture in list(self._capture):
            if capture[0] != tag:
                continue
            capture[1] -= 1
            if capture[1] == 0:
                self._capture.remove(capture)
                text = " ".join("".join(capture[3]).split())
                if capture[2] == "heading":
                    self.title = text
                elif capture[2] == "title":
                    self.title = self.title or text
                else:
                    self.messages.append(text)

    def handle_data(self, data: str) -> None:
        for capture in self._capture:
            capture[3].append(data)

    def _form_element(self, tag: str, attributes: dict[str, str]) -> None:
        assert self._form is not None
        name = attributes.get("name")
        kind = attributes.get("type", "text" if tag == "input" else "submit").lower()
        if tag == "input" and name:
            if kind == "submit":
                self._form["buttons"][name] = attributes.get("value", "")
            elif kind in ("checkbox", "radio"):
                if "checked" in attributes:
                    self._form["fields"][name] = attributes.get("value", "on")
            else:
                self._form["fields"][name] = attributes.get("value", "")
        elif tag == "button" and name and kind == "submit":
            self._form["buttons"][name] = attributes.get("value", "")
        elif tag == "textarea" and name:
            self._form["fields"][name] = ""
        elif tag == "select" and name:
            self._select = name
            self._form["fields"].setdefault(name, "")
        elif tag == "option" and self._select and "selected" in attributes:
            self._form["fields"][self._select] = attributes.get("value", "")


def _capture_kind(tag: str, attributes: Mapping[str, str]) -> str | None:
    element_id = attributes.get("id", "")
    classes = attributes.get("class", "").split()
    if element_id == "kc-page-title":
        return "heading"
    if tag == "title":
        return "title"
    if (
        element_id.startswith("input-error") and not element_id.startswith("input-error-container")
    ) or element_id == "kc-error-message":
        return "message"
    if "kc-feedback-text" in classes or "alert-error" in classes or "instruction" in classes:
        return "message"
    return None


class RealmLogin:
    """Form login bound to one realm: builds authorization URLs and redeems codes.

    The ``form_login`` pytest fixture is an instance. Example::

        result = form_login("alice")                      # kc-web, scope openid
        tokens = form_login.exchange_code(result)          # token endpoint answer (dict)
        result = form_login("bob", client_id="kc-public", pkce=True)
    """

    def __init__(self, realm: KeycloakRealm, redirect_uri: str = DEFAULT_REDIRECT_URI) -> None:
        self.realm = realm
        self.redirect_uri = redirect_uri

    def authorization_url(
        self,
        client_id: str = "kc-web",
        *,
        redirect_uri: str | None = None,
        scope: str = "openid",
        state: str | None = None,
        code_challenge: str | None = None,
        **params: str,
    ) -> str:
        """An authorization-code request URL for ``client_id`` (extra ``params`` appended)."""
        query = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri or self.redirect_uri,
            "scope": scope,
            "state": state or secrets.token_urlsafe(16),
            "nonce": secrets.token_urlsafe(16),
        }
        if code_challenge is not None:
            query.update(code_challenge=code_challenge, code_challenge_method="S256")
        query.update(params)
        return f"{self.realm.auth_url}?{urlencode(query)}"

    def __call__(
        self,
        username: str,
        password: str | None = None,
        *,
        client_id: str = "kc-web",
        redirect_uri: str | None = None,
        scope: str = "openid",
        pkce: bool = False,
        session: requests.Session | None = None,
        **params: str,
    ) -> FormLoginResult:
        """Log ``username`` in (password from the realm file unless given); return the code.

        Raises :class:`FormLoginError` when Keycloak refuses the login.
        """
        target = redirect_uri or self.redirect_uri
        verifier = secrets.token_urlsafe(48) if pkce else None
        challenge = _s256(verifier) if verifier else None
        url = self.authorization_url(
            client_id, redirect_uri=target, scope=scope, code_challenge=challenge, **params
        )
        if password is None:
            password = self.realm.user(username).password
        result = login_with_form(url, username, password, session=session, stop_at=target)
        return replace(result, redirect_uri=target, code_verifier=verifier)

    def exchange_code(self, result: FormLoginResult, client_id: str = "kc-web") -> dict[str, Any]:
        """Redeem ``result.code`` at the token endpoint; return the JSON answer.

        Raises ``requests.HTTPError`` when Keycloak refuses the code.
        """
        client = self.realm.client(client_id)
        data = {
            "grant_type": "authorization_code",
            "code": result.code or "",
            "redirect_uri": result.redirect_uri or self.redirect_uri,
            "client_id": client_id,
        }
        if client.secret:
            data["client_secret"] = client.secret
        if result.code_verifier:
            data["code_verifier"] = result.code_verifier
        response = requests.post(self.realm.token_url, data=data, timeout=_TIMEOUT)
        response.raise_for_status()
        tokens: dict[str, Any] = response.json()
        return tokens


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
