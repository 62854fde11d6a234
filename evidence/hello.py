"""The bare Flask app `make bench` measures Atlas' middleware against: one endpoint answering what /livez
answers, with nothing around it (no request id, metrics, access log or error handlers).

Served by the same server with the same settings as the services, so the ratio of the two is what the
middleware costs: ``python -m atlas_common.server evidence.hello:app``.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.get("/livez")
def livez() -> Response:
    return jsonify(status="alive")
