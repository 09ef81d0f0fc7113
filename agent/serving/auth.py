"""Who may use the HTTP server: a bearer token, as the MCP specification's authorization section
has a resource server check it (`Authorization: Bearer ...` on every request, 401 without).

Loopback alone does not keep other local users and processes off the arm, so `erarm mcp --http`
always asks for the token: one from ERARM_MCP_TOKEN, or one generated at start and shown to the
operator. It expires after `ttl_s`, and the protocol's sessions end when idle. stdio needs none:
only the process that started the server can speak on its pipe.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl

from erarm.robots.errors import ConfigError

TOKEN_ENV = "ERARM_MCP_TOKEN"
MIN_TOKEN_CHARS = 16  # a chosen token shorter than this is guessable
TOKEN_TTL_S = 12 * 3600  # a token is good for one working day
SESSION_IDLE_S = 15 * 60  # a protocol session with no request for this long is closed


def bearer_token() -> str:
    """The operator's token from the environment, or a new random one."""
    chosen = os.environ.get(TOKEN_ENV, "")
    if not chosen:
        return secrets.token_urlsafe(32)
    if len(chosen) < MIN_TOKEN_CHARS or any(c.isspace() for c in chosen):
        raise ConfigError(f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters with no "
                          "spaces (leave it unset and erarm makes one)")
    return chosen


class StaticTokenVerifier:
    """Accepts exactly one token (compared in constant time) until it expires."""

    def __init__(self, token: str, ttl_s: float = TOKEN_TTL_S):
        self._token = token.encode()
        self.expires_at = int(time.time() + ttl_s)

    async def verify_token(self, token: str) -> AccessToken | None:
        if not hmac.compare_digest(token.encode(), self._token):
            return None
        return AccessToken(token="operator", client_id="erarm-operator", scopes=[],
                           expires_at=self.expires_at)


def auth_settings(url: str) -> AuthSettings:
    """This server as its own resource: the token is checked by the verifier, not an issuer."""
    origin = url.rsplit("/", 1)[0]
    return AuthSettings(issuer_url=AnyHttpUrl(origin), resource_server_url=AnyHttpUrl(url),
                        validate_token_resource=False)
