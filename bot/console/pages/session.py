"""Sign-in and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from bot.console import auth
from bot.console.web import page

router = APIRouter(prefix="/console")
#: Where an operator who may see the insights but not the dashboard (an analyst) starts.
INSIGHTS_HOME = "/console/insights"


def landing(who: auth.SignedIn, target: str) -> str:
    """``target``, except that the console's home becomes the insights for an analyst
    (the dashboard would only answer 403)."""
    if target == auth.HOME_PATH and not who.can("view") and who.can("insights"):
        return INSIGHTS_HOME
    return target


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form (straight on to ``next`` when a session exists already)."""
    found = await auth.signed_in(request)
    if found is not None:
        return RedirectResponse(landing(found, auth.safe_next(next)), status_code=303)
    return page(request, "login.html", None, next=auth.safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
) -> Response:
    """Check the password; on success go to ``next`` with a new session cookie."""
    target = auth.safe_next(next)
    response = RedirectResponse(target, status_code=303)
    result = await auth.sign_in(request, response, name, password)
    if isinstance(result, auth.SignedIn):
        response.headers["location"] = landing(result, target)
        return response
    status = 429 if result.code == "throttled" else 401
    answer = page(request, "login.html", None, status, refusal=result, name=name, next=target)
    if result.retry_after:
        answer.headers["Retry-After"] = str(result.retry_after)
    return answer


@router.post("/logout")
async def logout(request: Request, who: auth.SignedInAny) -> Response:
    """End the session (CSRF-checked like every form) and go back to the sign-in page."""
    response = RedirectResponse(auth.LOGIN_PATH, status_code=303)
    await auth.sign_out(request, response)
    return response
