# Stand-in for the official nginx image (nginx:1.27-alpine, docker-library/nginx), built from Debian bookworm's
# nginx 1.22: the same binary name and /etc/nginx/nginx.conf, a user nginx with uid and gid 101 as in the official
# image, logs to the container's stdout/stderr, and the entrypoint's templates step (nginx-entrypoint.sh, envsubst).
# Built with ssl, auth_request and map, which docker/proxy uses. Test-only.
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx gettext-base \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 101 nginx \
 && useradd --system --uid 101 --gid nginx --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nginx \
 && chmod 755 /var/log/nginx \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log \
 && nginx -V 2>&1 | grep -q -- --with-http_auth_request_module \
 && nginx -V 2>&1 | head -1
COPY nginx-entrypoint.sh /docker-entrypoint.sh
EXPOSE 8443
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["nginx", "-g", "daemon off;"]
