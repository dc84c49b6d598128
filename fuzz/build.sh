#!/bin/sh
# Builds the libFuzzer targets of fuzz/ into build/fuzz/.
#
# nginx's core objects are needed to link the module's real code: the
# source of Debian's nginx (tools/nginx-source.sh) is built in build/fuzz/
# with clang, AddressSanitizer, UndefinedBehaviorSanitizer and libFuzzer's
# coverage, with the module added statically.

set -e

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/build/fuzz

TARGETS="fuzz_retry_after fuzz_json_var fuzz_key fuzz_directives
         fuzz_callback_url"

CC=${CC:-clang}
# every UBSan report is fatal; pointer-overflow and alignment are left
# recoverable only so that fuzz/ubsan.supp can name those of nginx's own
# code (run.sh sets halt_on_error=1, which still stops at any other)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined
     -fsanitize-recover=pointer-overflow,alignment"
# -Wno-error: clang warns where gcc, that builds the module, does not
CFLAGS="-g -O1 -fno-omit-frame-pointer $SAN -fsanitize=fuzzer-no-link -Wno-error"

sh tools/deps.sh clang libclang-rt-14-dev libjansson-dev zlib1g-dev curl

cd "$(sh tools/nginx-source.sh "$OUT")"

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
