"""A real SMTP server (aiosmtpd) that only counts what it accepts: the email stage's far end in the bench.

    python -m bench.smtpsink --port P                  # until SIGTERM
    python -m bench.smtpsink --port P --record FILE    # also one line per email: its X-Order-Id
"""

from __future__ import annotations

import argparse
import re
import smtplib
import time
from pathlib import Path
from typing import Any

from devtools.devsmtp import serve_until_signal

ORDER_ID = re.compile(rb"^X-Order-Id: *(\S+?) *\r?$", re.MULTILINE | re.IGNORECASE)


class Count:
    def __init__(self, record: Path | None = None) -> None:
        self.n = 0
        self.record = open(record, "a") if record else None  # noqa: SIM115 - open until the process ends

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.n += 1
        if self.record is not None:
            head = envelope.content.split(b"\r\n\r\n", 1)[0]
            found = ORDER_ID.search(head)
            self.record.write((found.group(1).decode() if found else "-") + "\n")
            self.record.flush()  # before the 250: an email counted is an email noted
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
    parser.add_argument("--record", type=Path, help="append each accepted email's X-Order-Id to this file")
    args = parser.parse_args()
    serve_until_signal(Count(args.record), "127.0.0.1", args.port)


if __name__ == "__main__":
    main()
