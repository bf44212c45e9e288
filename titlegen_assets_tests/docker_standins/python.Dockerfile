# Stand-in for the official python:3.11-slim-bookworm image (docker-library/python): Debian bookworm with CPython
# 3.11, where `python` and `pip` on PATH install into one site (here a venv on PATH, as the official image's
# /usr/local). Test-only; carries the test machine's locally added CA certificates.
ARG BASE
FROM ${BASE}
ENV LANG=C.UTF-8 \
    PATH=/usr/local/python/bin:$PATH
COPY ca-certificates/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /usr/local/python \
 && printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > /etc/pip.conf \
 && python --version && pip --version
CMD ["python3"]
