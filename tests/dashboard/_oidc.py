"""A minimal but real OpenID Connect provider on loopback, for the sign-in browser test.

Authorization code flow with PKCE (S256), one registered client, RS256-signed ID tokens
(joserfc, the JOSE library Authlib is built on; Authlib's own PKCE helper checks the
verifier), discovery, a key set and an end-session endpoint. Its sign-in page is a form
with the account's email; accounts are given up front (email -> verified or not). Every
check a provider owes the client is made: the client's id, secret and registered
redirect address, single-use codes bound to that client and address, the verifier.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class Provider:
    """What the provider knows and what happened at it (read by the test)."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    accounts: dict[str, bool]  # email -> email_verified
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    signed_in: list[str] = field(default_factory=list)
    signed_out: int = 0
    refused: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }

    def id_token(self, email: str, nonce: str | None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "sub-" + email,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "email": email,
            "email_verified": self.accounts[email],
            "name": email.split("@")[0],
        }
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)


_FORM = """<!doctype html><title>Test provider</title><h1>Test provider: sign in</h1>
<form method="post" action="/authorize">{hidden}
<label>Email <input name="email" id="email"></label>
<button type="submit">Continue</button></form>"""


class _Handler(BaseHTTPRequestHandler):
    provider: Provider  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: str | dict, ctype: str = "application/json") -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, to: str) -> None:
        self.send_response(302)
        self.send_header("Location", to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _refuse(self, why: str, status: int = 400) -> None:
        self.provider.refused.append(why)
        self._send(status, {"error": why})

    def do_GET(self) -> None:
        p, url = self.provider, urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            self._send(200, p.metadata())
        elif url.path == "/jwks":
            self._send(200, {"keys": [p.key.as_dict(private=False) | {"kid": "k1"}]})
        elif url.path == "/authorize":
            if q.get("client_id") != p.client_id or q.get("redirect_uri") != p.redirect_uri:
                return self._refuse("unknown client or redirect_uri")
            if q.get("response_type") != "code" or "openid" not in q.get("scope", "").split():
                return self._refuse("unsupported_response_type")
            if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
                return self._refuse("PKCE S256 required")
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in q.items()
            )
            self._send(200, _FORM.format(hidden=hidden), "text/html; charset=utf-8")
        elif url.path == "/logout":
            p.signed_out += 1
            back = q.get("post_logout_redirect_uri") or ""
            if back != p.redirect_uri:
                return self._refuse("unregistered post_logout_redirect_uri")
            self._redirect(back)
        else:
            self._send(404, {"error": "not_found"})

    def _form(self) -> dict[str, str]:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        return {k: v[0] for k, v in parse_qs(body).items()}

    def do_POST(self) -> None:
        p, path = self.provider, urlsplit(self.path).path
        form = self._form()
        if path == "/authorize":
            email = form.get("email", "")
            if email not in p.accounts or form.get("redirect_uri") != p.redirect_uri:
                return self._refuse("unknown account", 403)
            code = secrets.token_urlsafe(24)
            p.codes[code] = {
                "email": email,
                "client_id": form["client_id"],
                "redirect_uri": form["redirect_uri"],
                "nonce": form.get("nonce"),
                "challenge": form["code_challenge"],
                "expires": time.time() + 60,
            }
            p.signed_in.append(email)
            self._redirect(f"{p.redirect_uri}?{urlencode({'code': code, 'state': form['state']})}")
        elif path == "/token":
            client_id, secret = form.get("client_id"), form.get("client_secret")
            basic = self.headers.get("Authorization", "")
            if basic.startswith("Basic "):
                client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            if client_id != p.client_id or secret != p.client_secret:
                return self._refuse("invalid_client", 401)
            grant = p.codes.pop(form.get("code", ""), None)  # a code is good once
            if (
                form.get("grant_type") != "authorization_code"
                or grant is None
                or grant["expires"] < time.time()
                or grant["client_id"] != client_id
                or grant["redirect_uri"] != form.get("redirect_uri")
            ):
                return self._refuse("invalid_grant")
            verifier = form.get("code_verifier", "")
            if create_s256_code_challenge(verifier) != grant["challenge"]:
                return self._refuse("invalid_grant: PKCE verifier")
            self._send(
                200,
                {
                    "access_token": secrets.token_urlsafe(24),
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": p.id_token(grant["email"], grant["nonce"]),
                },
            )
        else:
            self._send(404, {"error": "not_found"})


@contextmanager
def provider(
    *, client_id: str, client_secret: str, redirect_uri: str, accounts: dict[str, bool]
) -> Iterator[Provider]:
    """The provider, serving on a free loopback port until the block ends."""
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    issuer = f"http://127.0.0.1:{server.server_address[1]}"
    handler.provider = Provider(issuer, client_id, client_secret, redirect_uri, accounts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler.provider
    finally:
        server.shutdown()
        server.server_close()
