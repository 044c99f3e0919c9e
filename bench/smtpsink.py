"""A real SMTP server (aiosmtpd) that only counts what it accepts: the email stage's far end in the bench.

    python -m bench.smtpsink --port P     # until SIGTERM
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from aiosmtpd.controller import Controller


class Count:
    def __init__(self) -> None:
        self.n = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.n += 1
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    handler = Count()
    controller = Controller(handler, hostname="127.0.0.1", port=args.port)
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
