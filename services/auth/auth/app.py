"""The auth service's Flask app: the shared app (probes, errors, metrics, the admin API with its token
check) plus the token endpoint and the published keys (oauth.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from atlas_common.app_factory import create_app as create_service_app
from atlas_common.config import AuthSettings, ConfigError, Settings
from atlas_common.keys import LocalKeys
from flask import Flask

from auth import VERSION, oauth, signing
from auth.api import api
from auth.config import TokenSettings

_ISSUER = next(d for d in AuthSettings.declared() if d.name == "issuer")


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """Raises ConfigError (one line) on a bad setting, without an issuer, or without a usable signing key."""
    env = os.environ if env is None else env
    Settings.from_env(env)  # every block is checked before the service's own requirements are
    auth = AuthSettings.from_env(env)
    tokens = TokenSettings.from_env(env)
    if auth.issuer is None:
        raise ConfigError(
            f"{_ISSUER.env} must be {_ISSUER.allowed()}, got nothing: the auth service signs its tokens as this "
            "issuer (iss), and the other services check it"
        )
    keys = signing.load(tokens.signing_key_file)
    # Its own admin API checks tokens with its own keys: no HTTP call to itself.
    app = create_service_app("auth", VERSION, [api], env, token_keys=LocalKeys(keys.public_set()))
    oauth.init_app(app, auth, tokens, keys)
    return app
