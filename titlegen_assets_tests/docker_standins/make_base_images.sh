#!/usr/bin/env bash
# Builds local stand-ins for the base images the Dockerfiles and compose.yaml name, on a machine that reaches
# Debian's packages but no container registry. Test-only: the product's images are built FROM the real ones.
# The stand-ins have names of their own (titlegen-test/...), mapped in through the compose environment, so a user's
# real images are never shadowed or replaced.
#   make_base_images.sh DEBIAN_TAG NAME=TAG...   e.g. titlegen-test/debian:bookworm-minbase
#                                                     python=titlegen-test/python:3.11-slim-bookworm
#                                                     postgres=titlegen-test/postgres:16 nginx=titlegen-test/nginx:1.27
# NAME picks docker_standins/NAME.Dockerfile. Each stand-in is built only when missing; every image this script
# makes is printed on stdout as "built TAG" (the suite removes what it built). A failing debootstrap or build prints
# its whole log. The host's locally added CA certificates (what update-ca-certificates installed from
# /usr/local/share/ca-certificates) are copied into a temporary build folder and into the images, so apt and pip
# inside containers trust the same TLS as the host does.
set -euo pipefail
debian_tag=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
show_log() { echo "---- $1 ----" >&2; tail -n 200 "$2" >&2; echo "---- end of $1 ----" >&2; }

if ! image_exists "$debian_tag"; then
  root=$work/rootfs
  echo "debootstrap bookworm (minbase) into $root" >&2
  # A mirror that drops a connection mid-download fails debootstrap outright: try again, from a clean folder.
  for attempt in 1 2 3; do
    rm -rf "$root"
    if debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1; then
      break
    fi
    cat "$root/debootstrap/debootstrap.log" >>"$work/debootstrap.log" 2>/dev/null || true
    show_log "debootstrap, attempt $attempt" "$work/debootstrap.log"
    [ "$attempt" = 3 ] && exit 1
    sleep 5
  done
  tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$debian_tag" >/dev/null
  rm -rf "$root"
  echo "built $debian_tag"
fi

context=$work/context
mkdir -p "$context/ca-certificates"
cp "$here"/*.Dockerfile "$here"/postgres-entrypoint.sh "$here"/nginx-entrypoint.sh "$context"/
find /usr/local/share/ca-certificates -name '*.crt' -exec cp {} "$context/ca-certificates/" \; 2>/dev/null || true

for spec in "$@"; do
  name=${spec%%=*}
  tag=${spec#*=}
  image_exists "$tag" && continue
  echo "building $tag from docker_standins/$name.Dockerfile" >&2
  if ! docker build --rm --force-rm -f "$context/$name.Dockerfile" --build-arg BASE="$debian_tag" -t "$tag" "$context" \
      >"$work/$name.log" 2>&1; then
    show_log "docker build of $tag" "$work/$name.log"
    exit 1
  fi
  echo "built $tag"
done
