"""A local SMTP catcher for ``make run``: accepts every message and keeps it as a .eml file.

    python -m devtools.devsmtp [--port 1025] [--dir .run/mail]
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from email import message_from_bytes
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from orderflow.settings import configure_logging

log = logging.getLogger(__name__)


class SaveToFolder:
    """aiosmtpd handler: one file per message, named by arrival order."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.count = len(list(folder.glob("*.eml")))
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        with self.lock:
            self.count += 1
            path = self.folder / f"{self.count:06d}.eml"
        path.write_bytes(envelope.content)
        msg = message_from_bytes(envelope.content)
        log.info("mail to %s: %s (%s)", ", ".join(envelope.rcpt_tos), msg["Subject"], path.name)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.devsmtp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".run/mail"))
    args = parser.parse_args()
    configure_logging("INFO", fmt="text")
    log.info("SMTP catcher on %s:%d, mail kept in %s", args.host, args.port, args.dir)
    serve_until_signal(SaveToFolder(args.dir), args.host, args.port)


def serve_until_signal(handler: Any, host: str, port: int) -> None:
    """Run an aiosmtpd ``handler`` on ``host:port`` until SIGTERM or SIGINT."""
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
