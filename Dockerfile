# The WeCom callback service: gunicorn with gevent workers, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PORT=8000 \
    WECOM_STORE=sqlite:////var/lib/wecom/state.db

WORKDIR /srv/wecom
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN useradd --system --uid 10001 --home-dir /srv/wecom wecom \
    && mkdir -p /var/lib/wecom && chown wecom /var/lib/wecom
COPY --chown=wecom app ./app
COPY --chown=wecom wsgi.py gunicorn.conf.py web.py ./

USER wecom
VOLUME ["/var/lib/wecom"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"

# T_TOKEN / C_TOKEN (the guide's names) are read as aliases of WECOM_TOKEN / WECOM_CORP_ID.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
