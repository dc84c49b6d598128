#!/bin/sh
# Runs the Test::Nginx suite.  The project's own runner of the format
# (t/runner) is used only when the real Test::Nginx is not installed.
#   TEST_FILES  the .t files or folders (default t/)
#   ASAN=1      with the module built with AddressSanitizer and UBSan
#   VALGRIND=1  with nginx (and the module) under valgrind's memcheck
set -e
cd "$(dirname "$0")/.."

export TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}"
export TEST_NGINX_LOAD_MODULES="${TEST_NGINX_LOAD_MODULES:-$PWD/build/nginx/ngx_http_scripting_gate_module.so}"
export SCRIPTING_MOCK_BINARY="${SCRIPTING_MOCK_BINARY:-$PWD/build/scripting-mock}"

inc=""
if ! perl -MTest::Nginx::Socket -e1 2>/dev/null; then
    inc="-I t/runner"
fi

if [ -z "${ASAN:-}" ] && [ -z "${VALGRIND:-}" ]; then
    # tini -s reaps the daemonized nginx at once (PID 1 here reaps orphans
    # only every ~2 s, which would cost that much per test block)
    exec tini -s -- prove $inc -r ${TEST_FILES:-t/}
fi

if [ -n "${VALGRIND:-}" ]; then
    # nginx and the module as built by make build, every process of it
    # (master, workers, the "nginx -s reload" of a test) under memcheck;
    # one report file per process.  Leaks are not looked for: nginx frees
    # its pools and zones by exiting, by design.  Slower by 20 to 50
    # times: the runner's timeouts are widened (TEST_NGINX_TIMEOUT).
    reports=$PWD/build/valgrind/reports
    rm -rf "$reports"
    mkdir -p "$reports"
    printf '#!/bin/sh\nexec valgrind --tool=memcheck --trace-children=yes --leak-check=no --num-callers=30 --suppressions=%s --log-file=%s/%%p.log %s "$@"\n' \
        "$PWD/t/valgrind.supp" "$reports" "$TEST_NGINX_BINARY" \
        > build/valgrind/nginx
    chmod +x build/valgrind/nginx
    export TEST_NGINX_BINARY="$PWD/build/valgrind/nginx"
    export TEST_NGINX_TIMEOUT="${TEST_NGINX_TIMEOUT:-30}"
    # for the few checks of a duration that allow for a slow nginx
    export SCRIPTING_GATE_SLOW=1

    echo "under valgrind memcheck:"
    rc=0
    tini -s -- prove $inc -r ${TEST_FILES:-t/} || rc=$?

    # an error as memcheck words it, or a non-zero summary (a process
    # killed by a test writes none)
    bad=$(grep -lE '^==[0-9]+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|Argument .* of function|Process terminating with default action of signal (4|6|7|8|11) )|ERROR SUMMARY: [1-9]' \
          "$reports"/*.log 2>/dev/null || true)
    echo "$(ls "$reports" | wc -l) processes checked"
    if [ -n "$bad" ]; then
        echo "valgrind reports:"
        cat $bad
        exit 1
    fi

    echo "no valgrind report"
    exit $rc
fi

# The sanitized module in Debian's nginx: nginx alone gets the sanitizers'
# runtime, preloaded by a wrapper; their reports go to files.
export TEST_NGINX_LOAD_MODULES="$PWD/build/asan/ngx_http_scripting_gate_module.so"
reports=$PWD/build/asan/reports
rm -rf "$reports"
mkdir -p "$reports"
# workers that run as another user (nginx's default "user nobody" when
# started as root, as the conf-examples are) must be able to write their
# report here too: otherwise it goes to stderr, that is to error.log
chmod 1777 "$reports"

# nginx frees little at exit by design: leaks are not what this looks for
export ASAN_OPTIONS="detect_leaks=0:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan"

preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
printf '#!/bin/sh\nLD_PRELOAD="%s" exec %s "$@"\n' "$preload" \
    "$TEST_NGINX_BINARY" > build/asan/nginx
chmod +x build/asan/nginx
export TEST_NGINX_BINARY="$PWD/build/asan/nginx"

echo "under AddressSanitizer and UndefinedBehaviorSanitizer:"
rc=0
tini -s -- prove $inc -r ${TEST_FILES:-t/} || rc=$?

if [ -n "$(ls -A "$reports")" ]; then
    echo "sanitizer reports:"
    cat "$reports"/*
    exit 1
fi

echo "no sanitizer report"
exit $rc
