"""A real SMTP server (aiosmtpd) that only counts what it accepts: the email stage's far end in the bench.

    python -m bench.smtpsink --port P     # until SIGTERM
"""

from __future__ import annotations

import argparse
import smtplib
import time
from typing import Any

from devtools.devsmtp import serve_until_signal


class Count:
    def __init__(self) -> None:
        self.n = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.n += 1
        return "250 OK"


def ceiling(port: int, messages: list[bytes]) -> float:
    """Messages/s that one smtplib connection gets through this sink: sendmail in a loop, no Kafka."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        start = time.perf_counter()
        for raw in messages:
            smtp.sendmail("orders@shop.example", ["ada@example.com"], raw)
        return len(messages) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve_until_signal(Count(), "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
