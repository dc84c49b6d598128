#!/bin/sh
# Builds the libFuzzer targets of fuzz/ into build/fuzz/.
#
# nginx's core objects are needed to link the module's real code, and
# Debian's nginx-dev ships headers only: the source of the nginx that
# Debian packages (1.22.1, the tarball of its source package) is fetched
# into build/fuzz/, checked against the sha256 that Debian's .dsc states,
# and built there with clang, AddressSanitizer, UndefinedBehaviorSanitizer
# and libFuzzer's coverage, with the module added statically.  Nothing
# fetched here is ever part of the repository.

set -e

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/build/fuzz

NGINX_VERSION=1.22.1
NGINX_TARBALL=nginx_$NGINX_VERSION.orig.tar.gz
NGINX_URL=http://deb.debian.org/debian/pool/main/n/nginx/$NGINX_TARBALL
# Checksums-Sha256 of nginx_1.22.1-9+deb12u9.dsc (the orig tarball is the
# same for every Debian revision of 1.22.1)
NGINX_SHA256=9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31

TARGETS="fuzz_retry_after fuzz_json_var fuzz_key fuzz_directives"

CC=${CC:-clang}
# every UBSan report is fatal; pointer-overflow and alignment are left
# recoverable only so that fuzz/ubsan.supp can name those of nginx's own
# code (run.sh sets halt_on_error=1, which still stops at any other)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined
     -fsanitize-recover=pointer-overflow,alignment"
# -Wno-error: clang warns where gcc, that builds the module, does not
CFLAGS="-g -O1 -fno-omit-frame-pointer $SAN -fsanitize=fuzzer-no-link -Wno-error"

sh tools/deps.sh clang libclang-rt-14-dev libjansson-dev zlib1g-dev curl

mkdir -p "$OUT"
cd "$OUT"

if [ ! -f "$NGINX_TARBALL" ]; then
    curl -fsS -o "$NGINX_TARBALL.part" "$NGINX_URL"
    mv "$NGINX_TARBALL.part" "$NGINX_TARBALL"
fi

echo "$NGINX_SHA256  $NGINX_TARBALL" | sha256sum -c --quiet - || {
    echo "$NGINX_TARBALL: sha256 mismatch, remove it and try again" >&2
    exit 1
}

if [ ! -d nginx-$NGINX_VERSION ]; then
    tar xzf "$NGINX_TARBALL"
fi

cd nginx-$NGINX_VERSION

# --with-compat as Debian's nginx (the module needs its fields), the rest
# minimal; configured again when the module's config or this script changes
if [ ! -f objs/Makefile ] || [ "$ROOT/config" -nt objs/Makefile ] \
   || [ "$ROOT/fuzz/build.sh" -nt objs/Makefile ]; then
    ./configure --with-cc="$CC" \
        --with-cc-opt="$(echo $CFLAGS)" \
        --with-ld-opt="$(echo $SAN)" \
        --with-compat --with-debug \
        --without-pcre --without-http_rewrite_module \
        --add-module="$ROOT" \
        > "$OUT/configure.log" 2>&1 \
        || { tail -30 "$OUT/configure.log"; exit 1; }
fi

make -j"${JOBS:-1}" -f objs/Makefile > "$OUT/make.log" 2>&1 \
    || { tail -30 "$OUT/make.log"; exit 1; }

INCS="-I src/core -I src/event -I src/event/modules -I src/os/unix
      -I src/http -I src/http/modules -I objs -I $ROOT/ngx_module"

# every object, the module's included; nginx.c once more with its main()
# renamed, as libFuzzer brings its own
$CC $CFLAGS $INCS -Dmain=ngx_nginx_main -c src/core/nginx.c \
    -o "$OUT/nginx_nomain.o"
OBJS=$(find objs/src objs/addon -name '*.o' ! -name nginx.o | sort)
OBJS="$OBJS objs/ngx_modules.o $OUT/nginx_nomain.o"
LIBS=$(sed -n '/$(LINK) -o objs\/nginx/,/^$/p' objs/Makefile \
       | grep -o -- ' -l[a-z0-9_]*' | tr -d '\n')

$CC $CFLAGS $INCS -c "$ROOT/fuzz/fuzz_common.c" -o "$OUT/fuzz_common.o"

for t in $TARGETS; do
    $CC $CFLAGS $INCS -c "$ROOT/fuzz/$t.c" -o "$OUT/$t.o"
    $CC $SAN -fsanitize=fuzzer -o "$OUT/$t" "$OUT/$t.o" "$OUT/fuzz_common.o" \
        $OBJS $LIBS
    echo "built $OUT/$t"
done
