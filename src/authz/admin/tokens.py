"""Who is calling the admin API: a bearer JWT with `sub`, `org_id` and `role`.

HS256 with a shared secret or RS256 with the issuer's public key (configured, never both).
Tokens are verified (signature, expiry, and issuer/audience when configured) and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass

import jwt

MANAGER_ROLES = frozenset({"owner", "admin"})


class AuthError(Exception):
    """Missing or invalid credentials (HTTP 401 / gRPC UNAUTHENTICATED)."""


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    org_id: str
    role: str


class Authenticator:
    def __init__(self, *, hs256_secret: str = "", rs256_public_key: str = "", issuer: str = "", audience: str = ""):
        if hs256_secret and rs256_public_key:
            raise ValueError("configure either an HS256 secret or an RS256 public key, not both")
        self._key = hs256_secret or rs256_public_key
        self._algorithms = ["HS256"] if hs256_secret else ["RS256"]
        self._issuer = issuer or None
        self._audience = audience or None

    @property
    def configured(self) -> bool:
        return bool(self._key)

    def principal(self, authorization: str | None) -> Principal:
        if not self.configured:
            raise AuthError(
                "the admin API is not configured: set admin_jwt_hs256_secret or admin_jwt_rs256_public_key_file"
            )
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("send 'authorization: Bearer <token>'")
        try:
            claims = jwt.decode(
                token.strip(),
                self._key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=30,
                options={"require": ["exp", "sub", "org_id", "role"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"the token is not valid: {exc}") from None
        return Principal(subject=str(claims["sub"]), org_id=str(claims["org_id"]), role=str(claims["role"]))


def issue(
    secret: str, *, subject: str, org_id: str, role: str, ttl_s: int = 3600, issuer: str = "", audience: str = ""
) -> str:
    """An HS256 token (for operators, the demo and tests)."""
    import time

    now = int(time.time())
    claims = {"sub": subject, "org_id": org_id, "role": role, "iat": now, "exp": now + ttl_s}
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
