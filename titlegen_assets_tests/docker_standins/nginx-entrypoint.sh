#!/bin/sh
# The official nginx image's entrypoint contract (docker-library/nginx 1.27: docker-entrypoint.sh with
# 20-envsubst-on-templates.sh), reduced to what docker/compose.yaml uses: when the command is nginx, every
# /etc/nginx/templates/*.template is written to $NGINX_ENVSUBST_OUTPUT_DIR (default /etc/nginx/conf.d) without its
# suffix, with the environment's defined variables substituted (envsubst) and nginx's own $variables left alone.
set -eu
if [ "${1:-}" = nginx ] && [ -d /etc/nginx/templates ]; then
  output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
  defined_envs=$(printf '${%s} ' $(awk 'END { for (name in ENVIRON) { print name } }' < /dev/null))
  for template in /etc/nginx/templates/*.template; do
    [ -f "$template" ] || continue
    name=$(basename "$template" .template)
    envsubst "$defined_envs" < "$template" > "$output_dir/$name"
    echo "$0: wrote $output_dir/$name from $template"
  done
fi
exec "$@"
