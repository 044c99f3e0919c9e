"""``python -m dashboard.password``: a password's hash for ``DASHBOARD_OPERATOR_PASSWORD_HASH``.

Reads the password from standard input (a prompt on a terminal); a new random one when it is empty,
printed once on standard error.
"""

from __future__ import annotations

import getpass
import secrets
import sys

from werkzeug.security import generate_password_hash


def main() -> int:
    password = getpass.getpass("password (empty: a new random one): ") if sys.stdin.isatty() else sys.stdin.read()
    password = password.strip()
    if not password:
        password = secrets.token_urlsafe(12)
        sys.stderr.write(f"password: {password}\n")
    sys.stdout.write(generate_password_hash(password) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
