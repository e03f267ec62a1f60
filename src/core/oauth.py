"""Single sign-on: Trino's OAuth2 authenticator and JWT bearer tokens from an OIDC provider.

The provider (e.g. Hydra of the Canonical Identity Platform, over the `oauth` relation)
registers Trino as a client and sends its issuer, endpoints, JWKS and client credentials.
Trino then signs browsers in with the authorization code flow (Web UI and clients that
support it) and accepts JWT bearer tokens signed by the provider's keys (service
accounts, no browser).

Trino reads the endpoints from the properties (OIDC discovery off): the provider sent
them already, and Trino needs no answer from it to start. Trino cannot read the client
secret from a file (its secrets resolver knows only `${ENV:...}`, and the Pebble plan
would show an environment): the secret is in config.properties, which is 0600.
"""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import urlsplit

CALLBACK_PATH = "/oauth2/callback"
# What Trino asks the provider for and registers with it (the library's space-separated form).
SCOPES = ("openid", "email", "profile")
# Trino's user name: the token's subject (Trino's default, written out to be plain).
PRINCIPAL_FIELD = "sub"
PREFIX = "http-server.authentication"


@dataclasses.dataclass(frozen=True)
class OAuthProvider:
    """What the provider sent: where it is, how to reach it, and our client."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_endpoint: str
    userinfo_endpoint: str
    client_id: str
    client_secret: str = dataclasses.field(default="", repr=False)
    ca: str = dataclasses.field(default="", repr=False)  # PEM: the provider's CA chain


def shared(provider: OAuthProvider) -> str:
    """The provider's settings a coordinator shares with its workers, without the secret."""
    fields = dataclasses.asdict(provider)
    del fields["client_secret"]
    return json.dumps(fields, sort_keys=True)


def from_shared(text: str, client_secret: str) -> OAuthProvider:
    """The provider a coordinator shared (`shared`); ValueError if it is not that shape."""
    fields = json.loads(text)
    names = {field.name for field in dataclasses.fields(OAuthProvider)} - {"client_secret"}
    if not isinstance(fields, dict) or set(fields) != names:
        raise ValueError("not the fields of an OAuth provider")
    if not all(isinstance(value, str) for value in fields.values()):
        raise ValueError("a field is not text")
    return OAuthProvider(**fields, client_secret=client_secret)


def redirect_uri(external_url: str) -> str:
    """Trino's callback at the origin of its external URL (Trino serves it at the root)."""
    parts = urlsplit(external_url)
    return f"{parts.scheme}://{parts.netloc}{CALLBACK_PATH}"


def problem(provider: OAuthProvider, sender: str) -> str:
    """Why Trino cannot use what the provider sent, or empty."""
    endpoints = {
        "issuer_url": provider.issuer,
        "authorization_endpoint": provider.authorization_endpoint,
        "token_endpoint": provider.token_endpoint,
        "jwks_endpoint": provider.jwks_endpoint,
    }
    if provider.userinfo_endpoint:
        endpoints["userinfo_endpoint"] = provider.userinfo_endpoint
    for key, url in endpoints.items():
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
            return (
                f"oauth: {sender} sent {key}={url!r}, not an https URL: Trino fetches keys and "
                f"tokens over HTTPS only; fix the provider's public URL"
            )
    if not provider.client_id.strip() or not provider.client_secret:
        return f"oauth: {sender} sent no client id or client secret; re-create the relation"
    return ""


def properties(provider: OAuthProvider) -> dict[str, str]:
    """config.properties lines for the OAuth2 authenticator, the Web UI and JWT bearers."""
    oauth2 = {
        "issuer": provider.issuer,
        "client-id": provider.client_id,
        "client-secret": provider.client_secret,
        "scopes": ",".join(SCOPES),
        "principal-field": PRINCIPAL_FIELD,
        "oidc.discovery": "false",
        "auth-url": provider.authorization_endpoint,
        "token-url": provider.token_endpoint,
        "jwks-url": provider.jwks_endpoint,
    }
    if provider.userinfo_endpoint:
        oauth2["userinfo-url"] = provider.userinfo_endpoint
    jwt = {
        # An https URL: Trino reads the provider's JWKS and follows its key rotation.
        "key-file": provider.jwks_endpoint,
        "required-issuer": provider.issuer,
        # Tokens for Trino: a service account asks for the audience of Trino's client.
        "required-audience": provider.client_id,
        "principal-field": PRINCIPAL_FIELD,
    }
    return {
        "web-ui.authentication.type": "oauth2",
        **{f"{PREFIX}.oauth2.{key}": value for key, value in oauth2.items()},
        **{f"{PREFIX}.jwt.{key}": value for key, value in jwt.items()},
    }
