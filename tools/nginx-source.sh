#!/bin/sh
# Fetches the source of the nginx that Debian packages (1.22.1, the orig
# tarball of its source package) into the folder given, checks it against
# the sha256 that Debian's .dsc states, and unpacks it there.  Prints the
# path of the source tree.  Debian's nginx-dev ships headers only; the
# fuzz targets and the static build check need nginx's own objects.
# Nothing fetched here is ever part of the repository.
#
#   sh tools/nginx-source.sh build/fuzz   ->  build/fuzz/nginx-1.22.1

set -e

DIR=${1:?usage: nginx-source.sh DIR}

NGINX_VERSION=1.22.1
NGINX_TARBALL=nginx_$NGINX_VERSION.orig.tar.gz
NGINX_URL=http://deb.debian.org/debian/pool/main/n/nginx/$NGINX_TARBALL
# Checksums-Sha256 of nginx_1.22.1-9+deb12u9.dsc (the orig tarball is the
# same for every Debian revision of 1.22.1)
NGINX_SHA256=9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31

mkdir -p "$DIR"
cd "$DIR"

# exit status 2: the source could not be fetched
if [ ! -f "$NGINX_TARBALL" ]; then
    curl -fsS --max-time 120 -o "$NGINX_TARBALL.part" "$NGINX_URL" >&2 \
        || { echo "cannot fetch $NGINX_URL" >&2; exit 2; }
    mv "$NGINX_TARBALL.part" "$NGINX_TARBALL"
fi

echo "$NGINX_SHA256  $NGINX_TARBALL" | sha256sum -c --quiet - >&2 || {
    echo "$NGINX_TARBALL: sha256 mismatch, remove it and try again" >&2
    exit 1
}

if [ ! -d nginx-$NGINX_VERSION ]; then
    tar xzf "$NGINX_TARBALL"
fi

echo "$(pwd)/nginx-$NGINX_VERSION"
