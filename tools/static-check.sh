#!/bin/sh
# make static: the module built into nginx (--add-module, not a dynamic
# module), from the source of Debian's nginx (tools/nginx-source.sh), and
# the module's test files run against that nginx.  A static build orders
# the module among nginx's own modules differently (its filters must be
# chained after the header filter module's): the dynamic build that
# make test uses cannot show a mistake there.  Not part of make test: it
# fetches nginx's source and builds all of nginx.
#
# The conf-examples test (load_module lines) and the runner's self-test
# (modules this build leaves out) need Debian's nginx and are not run.
# With STATIC_OPTIONAL=1 (make test), a machine that cannot fetch nginx's
# source skips the check, saying so; a build or a test that fails fails.

set -e

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/build/static

sh tools/deps.sh gcc make curl libpcre2-dev zlib1g-dev libjansson-dev \
    libcurl4-openssl-dev libhiredis-dev

rc=0
SRC=$(sh tools/nginx-source.sh "$OUT") || rc=$?
if [ $rc -eq 2 ] && [ -n "${STATIC_OPTIONAL:-}" ]; then
    echo "static build check SKIPPED: nginx's source could not be fetched"
    exit 0
fi
[ $rc -eq 0 ] || exit $rc
cd "$SRC"

if [ ! -f "$OUT/objs/Makefile" ] || [ "$ROOT/config" -nt "$OUT/objs/Makefile" ] \
   || [ "$ROOT/tools/static-check.sh" -nt "$OUT/objs/Makefile" ]
then
    # sub_filter: t/021 retries in front of it
    ./configure --with-compat --builddir="$OUT/objs" \
        --with-http_sub_module \
        --with-cc-opt="-g -O1 -Werror" --add-module="$ROOT" \
        > "$OUT/configure.log" 2>&1 \
        || { tail -30 "$OUT/configure.log"; exit 1; }
fi

make -j"${JOBS:-2}" -f "$OUT/objs/Makefile" > "$OUT/make.log" 2>&1 \
    || { tail -30 "$OUT/make.log"; exit 1; }

cd "$ROOT"

TEST_NGINX_BINARY="$OUT/objs/nginx" TEST_NGINX_LOAD_MODULES=" " \
TEST_FILES="${TEST_FILES:-t/010-gate.t t/020-retry.t t/030-async.t \
    t/031-async-connections.t t/040-stats.t t/041-stats-html.t \
    t/060-hostile.t}" sh t/run.sh
