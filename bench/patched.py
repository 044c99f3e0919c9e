"""``python -m bench.patched MODULE [ARGS...]``: run MODULE as ``__main__`` with the bench's tuning knobs.

Knobs, from the environment, so the real services run unchanged apart from them:

* ``BENCH_PRODUCER='{"linger_ms": 0}'`` - merged into every producer made through ``orderflow.kafka``
  (after the caller's own arguments, so it wins over ``Stage``'s ``linger_ms=10`` too)
* ``BENCH_CONSUMER='{...}'`` - the same for consumers
* ``BENCH_NO_CRC32C=1`` - hide the C ``crc32c`` module: kafka-python falls back to its pure-Python CRC
* ``BENCH_SWITCH_INTERVAL=0.001`` - ``sys.setswitchinterval`` (inherited by gunicorn's forked workers)
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from typing import Any

if os.environ.get("BENCH_NO_CRC32C") == "1":
    sys.modules["crc32c"] = None  # type: ignore[assignment]  # `import crc32c` now fails


def _wrap(real: Any, overrides: dict[str, Any]) -> Any:
    def make(*args: Any, **config: Any) -> Any:
        return real(*args, **{**config, **overrides})

    return make


def main() -> None:
    from orderflow.kafka import clients

    producer = json.loads(os.environ.get("BENCH_PRODUCER") or "{}")
    consumer = json.loads(os.environ.get("BENCH_CONSUMER") or "{}")
    if producer:
        clients.KafkaProducer = _wrap(clients.KafkaProducer, producer)  # type: ignore[misc]
    if consumer:
        clients.KafkaConsumer = _wrap(clients.KafkaConsumer, consumer)  # type: ignore[misc]
    if os.environ.get("BENCH_SWITCH_INTERVAL"):
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
