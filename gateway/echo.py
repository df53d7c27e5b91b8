"""A stand-in FHIR upstream for the gateway: answers every request with 200 and, as JSON, what
the gateway told it in the X-Tilgang-* headers. Standard library only.

    python gateway/echo.py --port 9081
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class EchoHandler(BaseHTTPRequestHandler):
    server_version = "echo"

    def answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "upstream": "echo",
                "client": self.headers.get("X-Tilgang-Client"),
                "kommune": self.headers.get("X-Tilgang-Kommune"),
                "service": self.headers.get("X-Tilgang-Service"),
                "access": self.headers.get("X-Tilgang-Access"),
                "environment": self.headers.get("X-Tilgang-Environment"),
                "service_codes": self.headers.get("X-Tilgang-Service-Codes"),
                # VKP's own header as the upstream gets it: every line, joined.
                "service_codes_header": ",".join(self.headers.get_all("ServiceCodes") or [])
                or None,
                "method": self.command,
                "method_override": self.headers.get("X-HTTP-Method-Override")
                or self.headers.get("X-HTTP-Method")
                or self.headers.get("X-Method-Override"),
                "path": self.path,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), EchoHandler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
