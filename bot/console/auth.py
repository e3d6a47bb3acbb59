"""Sign-in, roles and CSRF for the console's FastAPI routes.

A browser proves who it is with the session cookie (``COOKIE_NAME``): the random token
from :func:`bot.storage.accounts.create_session`, sent only to ``/console`` paths, HttpOnly
(page scripts cannot read it), ``SameSite=Lax`` (other sites' forms do not carry it),
``Secure`` on HTTPS, and living at most ``LIFETIME``. The server keeps only the token's hash.

Roles (``admin`` includes ``editor``, which includes ``viewer``; ``staff`` is a viewer who
also answers hand-offs; ``analyst`` sees the insights pages only) map to permissions:

==========  ======  =====  ======  =====  =======  ====================================
permission  viewer  staff  editor  admin  analyst  what it allows
==========  ======  =====  ======  =====  =======  ====================================
view        yes     yes    yes     yes    -        dashboard, knowledge, inbox, simulator,
                                                   notice history (read only)
edit        -       -      yes     yes    -        change knowledge, add examples, dismiss
publish     -       -      yes     yes    -        publish or roll back a knowledge version
handoff     -       yes    -       yes    -        read hand-off messages, reply, end one
notify      -       -      -       yes    -        send notices now
operators   -       -      -       yes    -        accounts and the audit log
insights    -       -      -       yes    yes      the insights pages (issue 13)
==========  ======  =====  ======  =====  =======  ====================================

Routes take ``who: CanEdit`` (``CanView``, ``CanHandoff`` ...), or use
``require_permission("edit")`` / ``require_role("editor")`` as a dependency:
without a session an HTML request is redirected (303) to ``/console/login?next=...``, an
htmx or API request gets 401; a signed-in operator without the permission gets 403. For
POST, PUT, PATCH and DELETE the same dependency also checks the CSRF token, so no form
can be accepted without one. Nothing here logs a password, a token or a session id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Final
from urllib.parse import quote, urlsplit

from fastapi import Depends, HTTPException, Request, Response

from bot.storage import accounts
from bot.storage.accounts import ConsoleSession, Operator, Refusal

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

#: The session cookie's name (its value is the raw session token).
COOKIE_NAME: Final = "bot_console"
#: The cookie is sent only to the console.
COOKIE_PATH: Final = "/console"
LOGIN_PATH: Final = "/console/login"
HOME_PATH: Final = "/console"
#: Where a form carries its CSRF token ...
CSRF_FIELD: Final = "csrf_token"
#: ... or where htmx (``hx-headers``) and scripts send it.
CSRF_HEADER: Final = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: What each role may do (see the table in the module docstring).
PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "viewer": frozenset({"view"}),
    "staff": frozenset({"view", "handoff"}),
    "editor": frozenset({"view", "edit", "publish"}),
    "admin": frozenset({"view", "edit", "publish", "handoff", "notify", "operators", "insights"}),
    "analyst": frozenset({"insights"}),
}
#: Every permission there is (``can`` refuses a name outside it: a typo must not pass quietly).
ALL_PERMISSIONS: Final = frozenset().union(*PERMISSIONS.values())
#: The roles a role includes: admin ⊇ editor ⊇ viewer, staff ⊇ viewer, admin ⊇ everything.
ROLE_INCLUDES: Final[dict[str, frozenset[str]]] = {
    "viewer": frozenset({"viewer"}),
    "staff": frozenset({"staff", "viewer"}),
    "editor": frozenset({"editor", "viewer"}),
    "admin": frozenset({"admin", "editor", "staff", "viewer", "analyst"}),
    "analyst": frozenset({"analyst"}),
}


@dataclass(frozen=True)
class SignedIn:
    """The operator behind a request, with their session (pages need its CSRF token)."""

    operator: Operator
    session: ConsoleSession

    @property
    def csrf_token(self) -> str:
        """The token every form of this session must carry (``CSRF_FIELD``)."""
        return accounts.csrf_token_for(self.session)

    def can(self, permission: str) -> bool:
        """``can(self.operator, permission)``: for showing or hiding a page's buttons."""
        return can(self.operator, permission)


def can(operator: Operator | None, permission: str) -> bool:
    """May ``operator`` do ``permission``? (ValueError for a permission that does not exist.)"""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    if operator is None or operator.disabled:
        return False
    return permission in PERMISSIONS.get(operator.role, frozenset())


def has_role(operator: Operator, *roles: str) -> bool:
    """Does ``operator``'s role include one of ``roles`` (admin includes every role)?"""
    return bool(ROLE_INCLUDES.get(operator.role, frozenset()) & set(roles))


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _secure(request: Request) -> bool:
    """HTTPS here or at the proxy in front (X-Forwarded-Proto), or the operator says so."""
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    if forwarded == "https":
        return True
    # CONSOLE_SECURE_COOKIE: for a deployment whose proxy does not say it terminated TLS.
    return bool(getattr(_services(request).settings, "console_secure_cookie", False))


def _signing_key(request: Request) -> bytes:
    """The key that signs session cookies: CONSOLE_SECRET, else one derived from the channel
    secret (every process of a deployment has it, so a cookie is good in all of them)."""
    settings = _services(request).settings
    secret = getattr(settings, "console_secret", None)
    base = secret.get_secret_value() if secret is not None else settings.channel_secret
    return hmac.new(base.encode(), b"console-session-cookie", hashlib.sha256).digest()


def _signed(request: Request, token: str) -> str:
    mac = hmac.new(_signing_key(request), token.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{token}.{mac}"


def cookie_token(request: Request) -> str | None:
    """The session token of the request's cookie when its signature holds (else None: a
    forged or altered cookie never reaches the database)."""
    value = request.cookies.get(COOKIE_NAME)
    if not value or "." not in value:
        return None
    token = value.rsplit(".", 1)[0]
    return token if hmac.compare_digest(_signed(request, token), value) else None


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    """Give the browser its signed session cookie (HttpOnly, SameSite=Lax, Path=/console)."""
    response.set_cookie(
        COOKIE_NAME,
        _signed(request, token),
        max_age=int(accounts.LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    """Make the browser forget its session cookie."""
    response.delete_cookie(
        COOKIE_NAME, path=COOKIE_PATH, secure=_secure(request), httponly=True, samesite="lax"
    )


_UNSET = object()


async def signed_in(request: Request) -> SignedIn | None:
    """The operator and session of this request's cookie, or None (looked up once a request)."""
    cached = getattr(request.state, "console_signed_in", _UNSET)
    if cached is not _UNSET:
        return cached if isinstance(cached, SignedIn) else None
    found = await accounts.session_for(_services(request).db, cookie_token(request))
    result = SignedIn(*found) if found is not None else None
    request.state.console_signed_in = result
    return result


async def current_operator(request: Request) -> Operator | None:
    """The signed-in operator of this request, or None."""
    found = await signed_in(request)
    return found.operator if found is not None else None


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: ``target`` when it is a console path, else the home page.

    Anything else (another site, ``//host``, a backslash trick) could send the operator to
    a look-alike page after a genuine sign-in, so it is replaced.
    """
    if not target or "\\" in target or any(ord(c) < 0x20 for c in target):
        return HOME_PATH
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return HOME_PATH
    if parts.path != HOME_PATH and not parts.path.startswith(HOME_PATH + "/"):
        return HOME_PATH
    return target


def login_url(request: Request) -> str:
    """The sign-in page, with this request's page as ``next``."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{LOGIN_PATH}?next={quote(safe_next(here), safe='')}"


def _not_signed_in(request: Request) -> HTTPException:
    """303 to the sign-in page for a browser page; 401 for htmx and API calls."""
    if request.headers.get("hx-request"):
        # htmx would swap the sign-in page into a fragment; HX-Redirect moves the whole page.
        return HTTPException(401, "sign in first", headers={"HX-Redirect": login_url(request)})
    accepts_html = "text/html" in request.headers.get("accept", "")
    if accepts_html and request.method in _SAFE_METHODS:
        return HTTPException(303, "sign in first", headers={"Location": login_url(request)})
    return HTTPException(401, "sign in first")


def check_same_origin(request: Request) -> None:
    """403 when the browser says the request comes from another site (the Origin header).

    Browsers send Origin with every form POST; a request without one (a script, curl) is
    left to the CSRF token. This is what protects the sign-in form, which has no session yet.
    """
    origin = request.headers.get("origin")
    if not origin:
        return
    # A proxy may rewrite Host; it then names the browser's host in X-Forwarded-Host.
    named = ",".join((request.headers.get("host", ""), request.headers.get("x-forwarded-host", "")))
    hosts = {h.strip().lower() for h in named.split(",") if h.strip()}
    if origin == "null" or urlsplit(origin).netloc.lower() not in hosts:
        raise HTTPException(403, "cross-site request refused")


async def check_csrf(request: Request, session: ConsoleSession) -> None:
    """403 unless the request carries this session's CSRF token (``X-CSRF-Token`` header or
    the ``csrf_token`` form field) and does not come from another site."""
    check_same_origin(request)
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
    if not accounts.csrf_ok(session, token):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")


def _guard(allowed: Callable[[Operator], bool]) -> Callable[[Request], Awaitable[SignedIn]]:
    async def dependency(request: Request) -> SignedIn:
        found = await signed_in(request)
        if found is None:
            raise _not_signed_in(request)
        if not allowed(found.operator):
            raise HTTPException(403, "your role does not allow this")
        if request.method not in _SAFE_METHODS:
            await check_csrf(request, found.session)
        return found

    return dependency


def require_role(*roles: str) -> Callable[[Request], Awaitable[SignedIn]]:
    """A dependency: the signed-in operator whose role includes one of ``roles``.

    ``require_role("viewer")`` admits viewer, staff, editor and admin. Redirects or 401
    without a session, 403 for another role; checks the CSRF token on unsafe methods.
    """
    unknown = set(roles) - set(ROLE_INCLUDES)
    if not roles or unknown:
        raise ValueError(f"require_role needs known roles, not {sorted(unknown) or 'none'}")
    return _guard(lambda operator: has_role(operator, *roles))


def require_permission(permission: str) -> Callable[[Request], Awaitable[SignedIn]]:
    """A dependency like ``require_role``, by permission (``view``, ``edit``, ``handoff`` ...)."""
    if permission not in ALL_PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return _guard(lambda operator: can(operator, permission))


#: Route parameters (``who: CanEdit``): the signed-in operator after the permission check,
#: and on unsafe methods the CSRF check. ``SignedInAny`` admits every role (sign-out).
SignedInAny = Annotated[SignedIn, Depends(require_role(*ROLE_INCLUDES))]
CanView = Annotated[SignedIn, Depends(require_permission("view"))]
CanEdit = Annotated[SignedIn, Depends(require_permission("edit"))]
CanPublish = Annotated[SignedIn, Depends(require_permission("publish"))]
CanHandoff = Annotated[SignedIn, Depends(require_permission("handoff"))]
CanNotify = Annotated[SignedIn, Depends(require_permission("notify"))]
CanManageOperators = Annotated[SignedIn, Depends(require_permission("operators"))]
CanSeeInsights = Annotated[SignedIn, Depends(require_permission("insights"))]


def client_address(request: Request) -> str | None:
    """The address failed sign-ins are counted under (uvicorn resolves trusted proxies)."""
    return request.client.host if request.client is not None else None


async def sign_in(
    request: Request, response: Response, name: str, password: str
) -> SignedIn | Refusal:
    """Check the name and password; on success start a session and set its cookie.

    A Refusal's ``message`` is safe to show (it never says whether the name exists); for
    ``throttled`` its ``retry_after`` is the wait in seconds. 403 for a cross-site post.
    """
    check_same_origin(request)
    db = _services(request).db
    result = await accounts.authenticate(db, name, password, client_address(request))
    if isinstance(result, Refusal):
        log.info("console sign-in refused", extra={"reason": result.code})
        return result
    token, session = await accounts.create_session(db, result)
    set_session_cookie(response, request, token)
    log.info("console sign-in", extra={"operator": result.name, "role": result.role})
    found = SignedIn(result, session)
    request.state.console_signed_in = found
    return found


async def sign_out(request: Request, response: Response) -> None:
    """End this browser's session (if any) and clear its cookie."""
    await accounts.end_session(_services(request).db, cookie_token(request))
    clear_session_cookie(response, request)
    request.state.console_signed_in = None
