"""The users service's Flask app."""

from __future__ import annotations

from collections.abc import Mapping

from atlas_common.app_factory import create_app as create_service_app
from flask import Flask

from users import VERSION
from users.api import api


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    return create_service_app("users", VERSION, [api], env)
