"""The projects service's Flask app."""

from __future__ import annotations

import os
from collections.abc import Mapping

from atlas_common.app_factory import create_app as create_service_app
from flask import Flask

from projects import VERSION
from projects.api import api
from projects.config import UsersServiceSettings
from projects.users_client import UsersClient


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    env = os.environ if env is None else env
    users = UsersServiceSettings.from_env(env)
    app = create_service_app("projects", VERSION, [api], env)
    app.extensions["projects.users"] = UsersClient(users) if users.url else None
    return app
