"""``python -m tests.crash_after_commit``: a consumer service that kills itself (SIGKILL) right after
a Kafka commit, before its state file records the batch: the narrowest window a kill -9 can hit.

``CRASH_SERVICE`` names the service (``transactions_backend`` or ``email_backend``);
``CRASH_AFTER_COMMITS=n``: the process dies right after the n-th commit of a batch that decided
something (or emailed, or recorded), inside ``committed()``, before the state is written.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
from typing import Any

log = logging.getLogger(__name__)
PROCESSORS = {"transactions_backend": "Verdicts", "email_backend": "Confirmations"}


def main() -> None:
    service = os.environ["CRASH_SERVICE"]
    after = int(os.environ["CRASH_AFTER_COMMITS"])
    module = importlib.import_module(f"{service}.main")
    processor = getattr(module, PROCESSORS[service])
    original = processor.committed
    commits = 0

    def committed(self: Any, ends: dict[int, int]) -> None:
        nonlocal commits
        if any(self.pending.values()):
            commits += 1
            if commits >= after:
                log.warning("killed right after Kafka commit %d, before the state file has it (ends %s)",
                            commits, ends)
                os.kill(os.getpid(), signal.SIGKILL)
        original(self, ends)

    processor.committed = committed
    module.main()


if __name__ == "__main__":
    main()
