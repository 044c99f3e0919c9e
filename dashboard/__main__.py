"""``python -m dashboard``: serve the dashboard with gunicorn and its config file."""

import os
import sys
from pathlib import Path

config = Path(__file__).with_name("gunicorn_conf.py")
os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "-c", str(config), "dashboard.wsgi:app"])
