"""Who owns an adventure: a random token that the server issues in an HttpOnly, SameSite=Lax
cookie (Secure behind HTTPS), signed with the server's key by itsdangerous. A cookie the
server did not sign is no owner at all. Only the token's hash is stored, with its adventures.
"""
from __future__ import annotations

import secrets

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response

COOKIE = "lanternpath_owner"
ONE_YEAR = 365 * 24 * 3600
# Keeps this key's signatures apart from any other use of the same secret.
SALT = "lanternpath.owner-cookie"


class OwnerCookies:
    def __init__(self, secret_key: str):
        self._signer = Signer(secret_key, salt=SALT)

    def token(self, request: Request, create: bool = False) -> str | None:
        """The owner token of the request's cookie if this server issued it; else a new one
        (with `create`) or None."""
        cookie = request.cookies.get(COOKIE)
        if cookie:
            try:
                return self._signer.unsign(cookie).decode()
            except (BadSignature, UnicodeDecodeError):
                pass
        return secrets.token_urlsafe(32) if create else None

    def attach(self, request: Request, response: Response, token: str | None = None) -> Response:
        """Sets the cookie for `token` (the request's own or a new one) unless it is already set."""
        value = self._signer.sign(token or self.token(request, create=True)).decode()
        if request.cookies.get(COOKIE) != value:
            response.set_cookie(COOKIE, value, max_age=ONE_YEAR, httponly=True, samesite="lax",
                                secure=request.url.scheme == "https")
        return response
