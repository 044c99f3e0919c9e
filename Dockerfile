# One image for all six services; each container picks its own with `python -m <service>`:
#   orders_backend (default) · transactions_backend · email_backend · analytics_backend · order_projector
#   · dashboard
# orders_backend and dashboard start gunicorn themselves.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The runtime dependencies first, read from pyproject.toml alone, so that editing the code does not
# reinstall them. The [dev] extra (pytest, ruff) stays out of the image.
COPY pyproject.toml /src/pyproject.toml
RUN python -c "import tomllib; deps = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']; print(*deps, sep='\n')" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Then the project itself (see .dockerignore for what is left out). The source folder is removed
# afterwards: the code runs from site-packages.
COPY . /src
RUN pip install /src && rm -rf /src

RUN groupadd --gid 10001 orderflow \
    && useradd --uid 10001 --gid orderflow --create-home --shell /usr/sbin/nologin orderflow
USER 10001:10001
WORKDIR /home/orderflow

# orders API, dashboard
EXPOSE 5002 8050

CMD ["python", "-m", "orders_backend"]
