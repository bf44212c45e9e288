#!/usr/bin/env bash
# Builds local stand-ins for the base images the Dockerfiles and compose.yaml name, on a machine that reaches
# Debian's packages but no container registry. Test-only: the product's images are built FROM the real ones.
#   make_base_images.sh PYTHON_TAG POSTGRES_TAG     e.g. python:3.11.13-slim-bookworm postgres:16.9-bookworm
# Each stand-in is rebuilt only when missing. The host's locally added CA certificates (what
# update-ca-certificates installed from /usr/local/share/ca-certificates) are copied into an ignored build
# folder and into the images, so apt and pip inside containers trust the same TLS as the host does.
set -euo pipefail
python_tag=$1
postgres_tag=$2
here=$(cd "$(dirname "$0")" && pwd)
debian_tag=titlegen-standin/debian:bookworm-minbase
context=$here/build          # git-ignored: holds the host's CA certificates while images build

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

if ! image_exists "$debian_tag"; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap bookworm (minbase) into $root"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; exit 1; }
  rm -f "$root.log"
  tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$debian_tag"
fi

rm -rf "$context" && mkdir -p "$context/ca-certificates"
cp "$here"/python.Dockerfile "$here"/postgres.Dockerfile "$here"/postgres-entrypoint.sh "$context"/
find /usr/local/share/ca-certificates -name '*.crt' -exec cp {} "$context/ca-certificates/" \; 2>/dev/null || true

if ! image_exists "$python_tag"; then
  docker build -q -f "$context/python.Dockerfile" --build-arg BASE="$debian_tag" -t "$python_tag" "$context"
fi
if ! image_exists "$postgres_tag"; then
  docker build -q -f "$context/postgres.Dockerfile" --build-arg BASE="$debian_tag" -t "$postgres_tag" "$context"
fi
rm -rf "$context"
