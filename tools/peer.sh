#!/bin/bash
# Peer check: nginx's own test suite (nginx-tests, not part of this
# repository) run twice on Debian's nginx, plain and then with the module
# loaded and, in every location holding proxy_pass,
#     scripting_gate zone=peer limit=1000; scripting_retry on=429 attempts=3;
# and the tests that pass plain but not with the module listed as LOST.
#
#   tools/peer.sh /path/to/nginx-tests     (a checkout, or a bare git dir)
#
# Environment:
#   PEER_TESTS_REV  a commit of the nginx-tests git dir to run instead of
#                 its HEAD (or of its work tree, for a checkout)
#   PEER_FILES    test files, as patterns (default: all, "*.t"),
#                 e.g. PEER_FILES="proxy* upstream* ssi*"
#   PEER_JOBS     files run at once (default 2)
#   PEER_TIMEOUT  seconds per run of one file (default 600)
#   PEER_REPORT   the Markdown report (default build/peer/report.md)
#   PEER_USER     the user the tests run as when started by root
#                 (default nginxpeer, created if missing): nginx-tests'
#                 temporary folders are 0700, which workers started by
#                 root (as nobody) cannot read
#   PEER_MODULE   the module (default build/nginx/ngx_http_scripting_gate_module.so)
#   PEER_GROUPS   patterns summed up in the report's table of groups
#                 (default: proxy* upstream* ssi* sub_filter* gunzip*
#                 range* mirror* http_error_page* not_modified*)
#   PEER_ZONE, PEER_DIRECTIVES   what is injected (defaults above and below)
#   PEER_LEAVE=1  keep the work folder, with nginx's folders of every run
#                 (TEST_NGINX_LEAVE) in its tmp/{plain,module}/FILE/
#   NGINX_BIN     nginx (default /usr/sbin/nginx)
#
# How: the snapshot is copied to a work folder (it is never modified).
# nginx-tests loads perl, stream, mail, geoip, image_filter and xslt from
# TEST_NGINX_MODULES whenever `nginx -V` says they are dynamic, so Debian's
# builds of them (libnginx-mod-*, the installed nginx's exact version) are
# fetched with apt-get download and unpacked there, beside the module.
# The module is loaded through TEST_NGINX_GLOBALS, its zone is defined
# through TEST_NGINX_GLOBALS_HTTP, and the directives are injected by
# tools/peer/PeerInject.pm (PERL5OPT), which wraps Test::Nginx's
# write_file_expand.  The plain run loads the wrapper too, injecting
# nothing.  tools/peer/selfcheck.t runs first, both ways: it passes only
# if an upstream's 429 is tried once plain and three times with the module.
# Each file is run with prove -v --merge, plain then with the module; its
# TAP is kept in build/peer/out/{plain,module}/.
#
# A test counts as passing when its line is "ok" without "# skip".  A file
# that loses tests is run again both ways, keeping nginx's error.log
# (build/peer/out/logs/); a test lost only once is reported as flaky, one
# lost twice as LOST, with its diagnostics and the error.log lines that
# only the module's run has (tools/peer/compare.pl).  Exit status 1 when a
# test is LOST.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SELF=$0

# the whole script is read before it runs (main, one): it may be edited
# while a long run goes on

# ---- one file, both ways (run by xargs, as the tests' user) ----------------

one() {         # file
    local f=$1
    cd "$PEER_TESTS"

    run() {     # mode
        local mode=$1 out=$PEER_OUT/$1/$f tmp=$PEER_WORK/tmp/$1/$f start
        local -a envs=(TEST_NGINX_GLOBALS="$PEER_GLOBALS" TMPDIR="$tmp")

        if [ "$mode" = module ]; then
            envs+=(TEST_NGINX_GLOBALS="$PEER_GLOBALS $PEER_LOAD"
                   TEST_NGINX_GLOBALS_HTTP="$PEER_ZONE"
                   PEER_INJECT="$PEER_DIRECTIVES"
                   PEER_INJECT_LOG="$out.conf")
        fi

        # nginx's folders (error.log) are kept on the second run of a file
        # that lost tests, and with PEER_LEAVE
        if [ -n "${PEER_LEAVE:-}${PEER_AGAIN:-}" ]; then
            envs+=(TEST_NGINX_LEAVE=1)
        fi

        mkdir -p "$tmp"

        rm -f "$out.tap" "$out.conf"
        start=$(date +%s)
        env "${envs[@]}" timeout -k 10 "$PEER_TIMEOUT" prove -v --merge "$f" \
            > "$out.tap" 2>&1 || true
        echo "# peer: $mode $f $(( $(date +%s) - start ))s" >> "$out.tap"
    }

    run plain
    run module
}

# ---- setup ------------------------------------------------------------------

main() {
    SRC=${1:-}
    if [ -z "$SRC" ]; then
        echo "usage: tools/peer.sh /path/to/nginx-tests (a checkout or a bare git dir)" >&2
        exit 2
    fi

    NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
    MODULE=${PEER_MODULE:-$ROOT/build/nginx/ngx_http_scripting_gate_module.so}
    JOBS=${PEER_JOBS:-2}
    REPORT=${PEER_REPORT:-$ROOT/build/peer/report.md}
    PEER_USER=${PEER_USER:-nginxpeer}
    export PEER_TIMEOUT=${PEER_TIMEOUT:-600}
    # shellcheck disable=SC2016
    export PEER_ZONE=${PEER_ZONE:-'scripting_gate_zone $uri zone=peer:10m;'}
    export PEER_DIRECTIVES=${PEER_DIRECTIVES:-'scripting_gate zone=peer limit=1000; scripting_retry on=429 attempts=3;'}
    PATTERNS=${PEER_FILES:-*.t}
    export PEER_GROUPS=${PEER_GROUPS:-proxy* upstream* ssi* sub_filter* gunzip* range* mirror* http_error_page* not_modified*}
    DEB_MODULES="libnginx-mod-http-geoip libnginx-mod-http-image-filter
        libnginx-mod-http-perl libnginx-mod-http-xslt-filter libnginx-mod-mail
        libnginx-mod-stream libnginx-mod-stream-geoip"

    [ -f "$MODULE" ] || { echo "no $MODULE: run make build" >&2; exit 2; }
    [ -x "$NGINX_BIN" ] || { echo "no $NGINX_BIN" >&2; exit 2; }

    WORK=$(mktemp -d /tmp/peer.XXXXXX)
    chmod 755 "$WORK"
    if [ -z "${PEER_LEAVE:-}" ]; then
        trap 'rm -rf "$WORK"' EXIT
    else
        echo "work folder (kept): $WORK"
    fi

    export PEER_WORK=$WORK
    export PEER_TESTS=$WORK/nginx-tests
    mkdir -p "$PEER_TESTS"

    REV=${PEER_TESTS_REV:-}
    if [ -f "$SRC/lib/Test/Nginx.pm" ] && [ -z "$REV" ]; then
        cp -a "$SRC/." "$PEER_TESTS/"
        rm -rf "$PEER_TESTS/.git"
        TESTS_COMMIT=$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo unknown)
        if [ -n "$(git -C "$SRC" status --porcelain 2>/dev/null)" ]; then
            TESTS_COMMIT="$TESTS_COMMIT + local changes"
        fi
    elif TESTS_COMMIT=$(git -C "$SRC" rev-parse --verify -q "${REV:-HEAD}^{commit}"); then
        git -C "$SRC" archive "$TESTS_COMMIT" | tar -x -C "$PEER_TESTS"
        TESTS_COMMIT="$TESTS_COMMIT ($(git -C "$SRC" log -1 --format='%cs: %s' "$TESTS_COMMIT"))"
    else
        echo "$SRC: neither nginx-tests (no lib/Test/Nginx.pm) nor a git dir with ${REV:-HEAD}" >&2
        exit 2
    fi
    [ -f "$PEER_TESTS/lib/Test/Nginx.pm" ] \
        || { echo "$SRC: no lib/Test/Nginx.pm in ${REV:-HEAD}" >&2; exit 2; }

    # Debian's dynamic modules of the installed nginx's exact version, kept in
    # build/peer/debs between runs
    NGINX_VERSION=$(dpkg-query -W -f='${Version}' nginx 2>/dev/null || true)
    [ -n "$NGINX_VERSION" ] || { echo "the nginx package is not installed" >&2; exit 2; }
    DEBS=$ROOT/build/peer/debs
    mkdir -p "$DEBS" "$WORK/modules" "$WORK/unpacked" "$WORK/lib" "$WORK/tmp"
    for p in $DEB_MODULES; do
        deb=$DEBS/${p}_${NGINX_VERSION//:/%3a}_$(dpkg --print-architecture).deb
        if [ ! -f "$deb" ]; then
            (cd "$DEBS" && apt-get download -q "$p=$NGINX_VERSION" 2>&1) \
                | grep -v '^W: Download is performed unsandboxed' || true
            [ -f "$deb" ] || { echo "apt-get download $p=$NGINX_VERSION failed" >&2; exit 2; }
        fi
        dpkg-deb -x "$deb" "$WORK/unpacked"
    done
    cp "$WORK"/unpacked/usr/lib/nginx/modules/*.so "$MODULE" "$WORK/modules/"
    PERL_NGINX=$(dirname "$(find "$WORK/unpacked" -name nginx.pm | head -1)")
    for so in "$WORK"/modules/*.so; do
        if ldd "$so" | grep -q 'not found'; then
            echo "$so needs libraries that are not installed:" >&2
            ldd "$so" | grep 'not found' >&2
            exit 2
        fi
    done

    cp "$ROOT/tools/peer/PeerInject.pm" "$SELF" "$WORK/lib/"
    export PEER_GLOBALS="env PERL5LIB=$PERL_NGINX;"
    PEER_LOAD="load_module $WORK/modules/${MODULE##*/};"
    export PEER_LOAD
    export PEER_OUT=$WORK/out
    mkdir -p "$PEER_OUT/plain" "$PEER_OUT/module"

    export PEER_TESTS_LIB=$PEER_TESTS/lib
    unset TEST_NGINX_GLOBALS TEST_NGINX_GLOBALS_HTTP TEST_NGINX_GLOBALS_STREAM \
          TEST_NGINX_VERBOSE TEST_NGINX_CATLOG TEST_NGINX_UNSAFE PEER_INJECT

    if [ "$(id -u)" = 0 ]; then
        id "$PEER_USER" >/dev/null 2>&1 \
            || useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$PEER_USER"
        chown -R "$PEER_USER" "$WORK"
        AS=(runuser -u "$PEER_USER" --)
    else
        AS=()
        PEER_USER=$(id -un)
    fi

    # the files: each pattern names .t files of the snapshot's top folder
    mapfile -t FILES < <(cd "$PEER_TESTS" && for p in $PATTERNS; do
                               for f in $p; do
                                   case $f in *.t) [ -f "$f" ] && echo "$f" ;; esac
                               done
                           done | sort -u)
    NFILES=${#FILES[@]}
    [ "$NFILES" -gt 0 ] || { echo "no test file matches: $PATTERNS" >&2; exit 2; }

    MODULE_COMMIT=$(git -C "$ROOT" log -1 --format=%h -- config ngx_module 2>/dev/null || true)
    MODULE_COMMIT="${MODULE_COMMIT:-unknown} (the last commit of config and ngx_module/)"
    if [ -n "$(git -C "$ROOT" status --porcelain -- config ngx_module 2>/dev/null)" ]; then
        MODULE_COMMIT="$MODULE_COMMIT + uncommitted changes"
    fi
    START=$(date +%s)
    echo "peer: $NFILES files of nginx-tests ${TESTS_COMMIT%% *}, as $PEER_USER, $JOBS at once"

    # ---- run ----------------------------------------------------------------

    runall() {      # files...
        printf '%s\n' "$@" \
            | "${AS[@]}" env TEST_NGINX_BINARY="$NGINX_BIN" \
                  TEST_NGINX_MODULES="$WORK/modules" \
                  PERL5LIB="$WORK/lib" PERL5OPT=-MPeerInject \
                  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
              xargs -P "$JOBS" -I{} bash "$WORK/lib/peer.sh" --one {}
    }

    # the injection must work: tools/peer/selfcheck.t passes plain only
    # with one attempt, and with the module only with three
    cp "$ROOT/tools/peer/selfcheck.t" "$PEER_TESTS/peer-selfcheck.t"
    chmod 644 "$PEER_TESTS/peer-selfcheck.t"
    runall peer-selfcheck.t
    for m in plain module; do
        if ! grep -q '^ok 1 ' "$PEER_OUT/$m/peer-selfcheck.t.tap"; then
            echo "peer: the self-check failed in the $m run:" >&2
            cat "$PEER_OUT/$m/peer-selfcheck.t.tap" >&2
            exit 2
        fi
    done
    SELFCHECK=$(for m in plain module; do
                    grep -m1 '^ok 1 ' "$PEER_OUT/$m/peer-selfcheck.t.tap" \
                        | sed "s/^ok 1 - /$m: /"
                done | paste -sd ';' | sed 's/;/; /')

    runall "${FILES[@]}"

    # files that lost tests are run once more, both ways, their first TAP kept
    # as FILE.first.tap
    mapfile -t AGAIN < <(perl "$ROOT/tools/peer/compare.pl" --lost "$PEER_OUT" "${FILES[@]}")
    if [ ${#AGAIN[@]} -gt 0 ]; then
        echo "peer: ${#AGAIN[@]} file(s) lost tests, running them again: ${AGAIN[*]}"
        for m in plain module; do
            for f in "${AGAIN[@]}"; do
                for x in tap conf; do
                    if [ -f "$PEER_OUT/$m/$f.$x" ]; then
                        mv "$PEER_OUT/$m/$f.$x" "$PEER_OUT/$m/$f.first.$x"
                    fi
                done
            done
        done
        PEER_AGAIN=1 runall "${AGAIN[@]}"
    fi

    # ---- report -------------------------------------------------------------

    # the error.log of each nginx of the second runs, beside the TAP
    for f in "${AGAIN[@]}"; do
        for m in plain module; do
            for d in "$WORK/tmp/$m/$f"/nginx-test-*; do
                [ -f "$d/error.log" ] || continue
                mkdir -p "$PEER_OUT/logs/$m/$f"
                cp "$d/error.log" "$PEER_OUT/logs/$m/$f/${d##*/}.error.log"
            done
        done
    done


    ELAPSED=$(( $(date +%s) - START ))
    mkdir -p "$(dirname "$REPORT")"
    STATUS=0

    {
        echo "# Peer check: nginx-tests with the module injected"
        echo
        echo "- command: \`${PEER_FILES:+PEER_FILES=\"$PEER_FILES\" }${REV:+PEER_TESTS_REV=$REV }${PEER_COMMAND:-tools/peer.sh $SRC}\`"
        echo "  (tools/peer.sh, $JOBS files at once, as user \`$PEER_USER\`)"
        echo "- nginx-tests: $TESTS_COMMIT"
        echo "- nginx: $("$NGINX_BIN" -v 2>&1 | sed 's/.*: //') (Debian $NGINX_VERSION), with Debian's"
        echo "  dynamic modules: $(cd "$WORK/unpacked/usr/lib/nginx/modules" && echo *.so)"
        echo "- module: $MODULE_COMMIT"
        echo "- injected: \`$PEER_ZONE\` in every http block; \`$PEER_DIRECTIVES\`"
        echo "  in every location holding proxy_pass"
        echo "- self-check (tools/peer/selfcheck.t: proxy_pass to an upstream that"
        echo "  answers 429, its \$upstream_status): $SELFCHECK"
        echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(( ELAPSED / 60 )) min $(( ELAPSED % 60 )) s"
        echo "- files: $NFILES ($PATTERNS)"
        echo
        echo "A test passes when its TAP line is \`ok\` without \`# skip\`. LOST: passes"
        echo "plain, fails (or is skipped, or missing) with the module, in both runs"
        echo "of its file (a file that loses tests is run twice); flaky: lost in one"
        echo "run of two. GAINED: the reverse, in the first run."
        echo
        perl "$ROOT/tools/peer/compare.pl" "$PEER_OUT" "${FILES[@]}" || STATUS=1
    } > "$REPORT"

    rm -rf "$ROOT/build/peer/out"
    cp -r "$PEER_OUT" "$ROOT/build/peer/out"
    cat "$REPORT"
    echo
    echo "report: $REPORT; TAP of each run: $ROOT/build/peer/out/"
    exit $STATUS
}

if [ "${1:-}" = "--one" ]; then
    one "$2"
else
    main "$@"
fi
