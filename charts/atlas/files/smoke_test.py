"""`helm test` check of one Atlas service: /readyz answers 200 and /db-status reports a connection.

Runs inside the service's own image (so no extra image is needed) as `python -c <this file> BASE_URL`;
the contract tests run it too, against the service started locally. Standard library only.
"""

import json
import sys
import urllib.request


def main(base_url: str) -> int:
    if not base_url.startswith(("http://", "https://")):
        print(f"expected an http(s) base URL, got {base_url!r}", file=sys.stderr)
        return 2
    # urlopen raises HTTPError on any 4xx/5xx, which fails the test pod with the status in its log.
    with urllib.request.urlopen(f"{base_url}/readyz", timeout=5) as response:  # noqa: S310 (scheme checked above)
        print(f"GET /readyz -> {response.status}")
    with urllib.request.urlopen(f"{base_url}/db-status", timeout=5) as response:  # noqa: S310
        status = json.load(response)
    print(f"GET /db-status -> {json.dumps(status)}")
    if status.get("connected") is not True:
        print("db-status does not report connected: true", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
