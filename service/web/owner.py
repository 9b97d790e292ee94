"""Who owns an adventure: a random token in an HttpOnly, SameSite=Lax cookie (Secure
behind HTTPS). Only its hash is stored, next to the adventures it started.
"""
from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "lanternpath_owner"
ONE_YEAR = 365 * 24 * 3600


def owner_token(request: Request, create: bool = False) -> str | None:
    token = request.cookies.get(COOKIE)
    if token and 20 <= len(token) <= 100:
        return token
    return secrets.token_urlsafe(32) if create else None


def with_owner_cookie(request: Request, response: Response, token: str | None = None) -> Response:
    token = token or owner_token(request, create=True)
    if request.cookies.get(COOKIE) != token:
        response.set_cookie(
            COOKIE, token, max_age=ONE_YEAR, httponly=True, samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response
