# Stand-in for the official postgres:16 image (docker-library/postgres), built from Debian bookworm's
# PostgreSQL 15: a different major version, enough for Dagster's storage. Honours POSTGRES_USER, POSTGRES_PASSWORD
# and POSTGRES_DB like the official entrypoint, keeps its data in /var/lib/postgresql/data, listens on 5432, and has
# pg_isready on PATH for the health check. Test-only.
ARG BASE
FROM ${BASE}
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p "$PGDATA" /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
