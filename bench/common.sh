# Shared by bench/run.sh and bench/reliability.sh: the mock, started and
# drained.  Expects $top (the repository) and $MOCK_PORT.

# starts the mock with the options given, stopping the one before
start_mock() {
    [ -n "${MOCK_PID:-}" ] && kill "$MOCK_PID" 2>/dev/null && wait "$MOCK_PID" 2>/dev/null || true
    "$top/build/scripting-mock" --listen 127.0.0.1:$MOCK_PORT --quiet "$@" > /dev/null &
    MOCK_PID=$!
    until curl -s -o /dev/null http://127.0.0.1:$MOCK_PORT/__mock/stats; do sleep 0.02; done
}

# waits until the mock has nothing in flight (a setup's leftovers, such as
# requests a proxy still had queued, must not fall into the next one)
drain() {
    local i
    for i in $(seq 1 600); do
        [ "$(curl -s http://127.0.0.1:$MOCK_PORT/__mock/stats | perl -MJSON::PP -e '
            my $s = decode_json(join "", <STDIN>); my $n = 0;
            $n += $_->{in_flight} for values %{$s->{keys}}; print $n')" = 0 ] && return
        sleep 0.1
    done
}
