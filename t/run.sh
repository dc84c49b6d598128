#!/bin/sh
# Runs the Test::Nginx suite.  The project's own runner of the format
# (t/runner) is used only when the real Test::Nginx is not installed.
set -e
cd "$(dirname "$0")/.."

export TEST_NGINX_BINARY="${TEST_NGINX_BINARY:-/usr/sbin/nginx}"
export TEST_NGINX_LOAD_MODULES="${TEST_NGINX_LOAD_MODULES:-$PWD/build/nginx/ngx_http_scripting_gate_module.so}"
export SCRIPTING_MOCK_BINARY="${SCRIPTING_MOCK_BINARY:-$PWD/build/scripting-mock}"

inc=""
if ! perl -MTest::Nginx::Socket -e1 2>/dev/null; then
    inc="-I t/runner"
fi

# tini -s reaps the daemonized nginx at once (PID 1 here reaps orphans
# only every ~2 s, which would cost that much per test block)
exec tini -s -- prove $inc -r ${TEST_FILES:-t/}
