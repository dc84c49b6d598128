# Hardening (issue 15, points 5 to 7): callback URLs checked by libcurl's
# URL API and by path segments; control bytes of keys and URIs escaped in
# the module's error-log lines; wake-up sockets named by pid and a
# per-start nonce, so that two instances whose workers have the same pids
# (containers of one pod: PID namespaces of their own, one network
# namespace) both gate, and a dead worker whose pid another process took
# is still found dead.  The last two run nginx under unshare --pid (as
# root; --map-root-user otherwise) and take a pid with nsenter.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use ScriptingGate::Nodes;
use ScriptingGate::Util qw(html_put http_get wait_until servroot children);
use JSON::PP qw(decode_json);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

ScriptingGate::Mock::start(delay => 0);

master_on();
workers(2);
worker_connections(1024);
log_level('info');
no_shuffle();

our $HttpConfig = <<'_EOC_';
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_async_zone zone=jobs:1m ttl=1m;

    upstream mock {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 16;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig)
        unless defined $block->http_config;
});

# submits a job with a Callback-Url; returns the status
sub submit_cb {
    my ($url) = @_;
    my $res = http_get('/api/v2/scripts/cb', method => 'GET',
                       headers => { 'Prefer' => 'respond-async',
                                    'Callback-Url' => $url });
    return $res->{status};
}

# an nginx of its own in a PID namespace of its own (its master is pid 1
# there, its workers 2 and 3), in the test's network namespace; returns
# the pid of unshare, whose death kills the namespace (--kill-child)
sub start_in_pidns {
    my ($name, $port, %o) = @_;
    my $timeout = $o{queue_timeout} || '10s';
    my @user = $> == 0 ? () : ('--map-root-user');
    my $node = ScriptingGate::Nodes::start_node(
        name => $name, port => $port, workers => $o{workers} || 2,
        worker_connections => 256, wait => 0,
        exec_prefix => ['unshare', '--pid', '--fork', '--kill-child', @user],
        http => <<'_EOC_' =~ s/QUEUE_TIMEOUT/$timeout/r);
    access_log off;
    scripting_gate_zone $script_id zone=ns:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_NODE_PORT;
        location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
            scripting_gate zone=ns limit=1 queue=50 queue_timeout=QUEUE_TIMEOUT;
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        }
    }
_EOC_
    return $node->{pid};
}

run_tests();

__DATA__

=== TEST 1: callback URLs that a receiver could normalise out of the allowed prefix are refused; paths under it are accepted
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/
                        callback_allow=http://127.0.0.1:$TEST_NGINX_MOCK_PORT/hook/;
    }
    location /scripting-gate/jobs/ {
        scripting_async_jobs zone=jobs;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my $base = 'http://127.0.0.1:' . $ENV{TEST_NGINX_MOCK_PORT};
my @r;
for my $path ('/hook/..;/admin', '/hook/%252e%252e/admin',
              '/hook/..%3b/admin', '/hook/%c0%ae%c0%ae/admin',
              '/hook/%C0%AE./admin',
              '/hook/../admin', '/hook/a/../../admin', '/hook/%2e%2E/admin',
              '/hook/a;b', '/hook/%25', '/hook/%e2%80%a4', '/hookx',
              '/hook', '/hook/a/b', '/hook/', '/hook/a%20b?x=..;/') {
    push @r, "$path " . main::submit_cb("$base$path");
}
# the origin is compared exactly
for my $url ('http://127.0.0.1:1/hook/a', "http://x\@127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}/hook/a",
             "https://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}/hook/a",
             "http:/127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}/hook/a",
             "HTTP://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}/hook/a#f") {
    (my $u = $url) =~ s/\d{4,5}/PORT/g;
    push @r, "$u " . main::submit_cb($url);
}
html_put('result.txt', join('', map { "$_\n" } @r));
--- request
GET /result.txt
--- response_body
/hook/..;/admin 400
/hook/%252e%252e/admin 400
/hook/..%3b/admin 400
/hook/%c0%ae%c0%ae/admin 400
/hook/%C0%AE./admin 400
/hook/../admin 400
/hook/a/../../admin 400
/hook/%2e%2E/admin 400
/hook/a;b 400
/hook/%25 400
/hook/%e2%80%a4 400
/hookx 400
/hook 400
/hook/a/b 202
/hook/ 202
/hook/a%20b?x=..;/ 202
http://127.0.0.1:1/hook/a 400
http://x@127.0.0.1:PORT/hook/a 400
https://127.0.0.1:PORT/hook/a 400
http:/127.0.0.1:PORT/hook/a 400
HTTP://127.0.0.1:PORT/hook/a#f 400
--- error_log
callback URL "http://127.0.0.1:
/hook/..;/admin" is not allowed
--- timeout: 20



=== TEST 2: a callback_allow prefix with a dot segment fails the configuration
--- http_config
    scripting_async_zone zone=jobs:1m;
--- config
    location /api/ {
        scripting_async zone=jobs pass=http://127.0.0.1:1 jobs_uri=/jobs/
                        callback_allow=http://127.0.0.1:1/hook/../;
    }
--- must_die
--- error_log
invalid callback_allow "callback_allow=http://127.0.0.1:1/hook/../": its path has a dot segment



=== TEST 3: LF in a key (decoded from the URI) is escaped in the log line that shows it: no forged line
--- http_config
    scripting_gate_zone  $script_id  zone=s:1m;
--- config
    location ~ (?s)^/k/(?<script_id>.+)$ {
        scripting_gate zone=s limit=$arg_limit;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
GET /k/a%0A2020/01/01%2012:00:00%20%5Bemerg%5D%201%231:%20FORGED%01%1b%5B2J?limit=x
--- error_code: 404
--- error_log
scripting_gate: invalid limit "x" for key "a\x0A2020/01/01 12:00:00 [emerg] 1#1: FORGED\x01\x1B[2J"
--- no_error_log eval
[qr/^2020\/01\/01 12:00:00 \[emerg\]/, qr/\x1b/]



=== TEST 4: LF in a key is escaped in the async "accepted" line, and a refused callback URL is shown escaped
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=2;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/
                        callback_allow=http://127.0.0.1:1/hook/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
http_get('/api/v2/scripts/x%0D%0AFORGED-KEY/y', method => 'GET',
         headers => { 'Prefer' => 'respond-async' });
# HTTP::Tiny refuses to send control bytes in a header
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => ScriptingGate::Util::server_port(),
                              Timeout => 5) or die "connect: $!";
print $s "GET /api/v2/scripts/z HTTP/1.0\r\nHost: localhost\r\n"
         . "Prefer: respond-async\r\n"
         . "Callback-Url: http://127.0.0.1:1/hook/\x1b[2J\x7fFORGED-URL\r\n\r\n";
my $answer = do { local $/; <$s> } // '';
close $s;
html_put('result.txt', ($answer =~ m{^HTTP/1\.\d (\d+)} ? $1 : 'none') . "\n");
--- request
GET /result.txt
--- response_body
400
--- error_log
key "x\x0D\x0AFORGED-KEY"
callback URL "http://127.0.0.1:1/hook/\x1B[2J\x7FFORGED-URL" is not allowed
--- no_error_log eval
[qr/^FORGED/, qr/\x1b/]



=== TEST 5: two instances whose workers have the same pids (PID namespaces of their own, one network namespace) both start and gate
--- http_config
--- config
    location = /t { return 200; }
--- init
package main;
my $p1 = ScriptingGate::Util::server_port() + 1;
my $p2 = ScriptingGate::Util::server_port() + 2;
ScriptingGate::Mock::reset();
my @kids = (main::start_in_pidns('ns1', $p1), main::start_in_pidns('ns2', $p2));
my $up = 0;
for my $p ($p1, $p2) {
    $up++ if wait_until(10, sub {
        IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p", Timeout => 1) });
}
# the workers have started, or failed to, once the master says so
sleep 1;
my %out;
for my $n (1, 2) {
    my %st = ScriptingGate::Mock::burst(
        port => $n == 1 ? $p1 : $p2, n => 8, timeout => 20,
        paths => ["/api/v2/scripts/pidns$n?scriptDataVersion=1"],
        headers => { 'X-Mock-Action' => '200/delay=100' });
    my $k = ScriptingGate::Mock::key_stats("pidns$n:1:");
    $out{$n} = join(' ', map { "$_ x $st{$_}" } sort keys %st)
               . ", upstream peak $k->{peak_in_flight}";
}
# the workers' sockets: the same pids, two names each
open my $u, '<', '/proc/net/unix';
my %names;
while (<$u>) { $names{$1}++ if m{\@nginx-scripting-gate/(2|3)/[0-9a-f]{16}\s*$} }
close $u;
my @err;
for my $n ('ns1', 'ns2') {
    open my $fh, '<', ScriptingGate::Nodes::prefix($n) . "/logs/error.log" or next;
    push @err, "$n: $_" for grep { /\[(emerg|alert|crit)\]/ } <$fh>;
}
kill 'KILL', @kids;    # unshare ignores TERM; --kill-child
waitpid($_, 0) for @kids;
html_put('result.txt', "listening: $up\n"
         . "instance 1: $out{1}\ninstance 2: $out{2}\n"
         . "sockets of pid 2: " . ($names{2} // 0) . ", of pid 3: " . ($names{3} // 0) . "\n"
         . join('', @err));
--- request
GET /result.txt
--- response_body
listening: 2
instance 1: 200 x 8, upstream peak 1
instance 2: 200 x 8, upstream peak 1
sockets of pid 2: 2, of pid 3: 2
--- timeout: 60



=== TEST 6: a dead worker's pid taken by another process: what the worker held is still given back
--- http_config
--- config
    location = /t { return 200; }
--- init
package main;
my $port = ScriptingGate::Util::server_port() + 3;
ScriptingGate::Mock::reset();
my $kid = main::start_in_pidns('ns3', $port, workers => 1,
                               queue_timeout => '4s');
wait_until(10, sub { IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                           Timeout => 1) });
my ($master) = children($kid);
my ($worker) = children($master);
# the worker, pid 2 in its namespace, holds the key's one slot
my $bg = ScriptingGate::Util::background(
    ["http://127.0.0.1:$port/api/v2/scripts/reuse?scriptDataVersion=1",
     method => 'POST', body => '',    # HTTP::Tiny sends a GET again
     headers => { 'X-Mock-Action' => '200/delay=8000' }]);
wait_until(5, sub { ScriptingGate::Mock::key_stats('reuse:1:')->{in_flight} });
kill 'KILL', $worker;
wait_until(5, sub { !grep { $_ == $worker } children($master) });
# at once, before the new worker's first sweep: another process of the
# namespace gets pid 2, as a reused pid would
my $taken = `nsenter -t $master -p -- sh -c 'echo 1 > /proc/sys/kernel/ns_last_pid; sleep 30 >/dev/null 2>&1 & echo \$!'`;
chomp $taken;
my $t0 = time;
my $res = http_get("http://127.0.0.1:$port/api/v2/scripts/reuse?scriptDataVersion=1",
                   timeout => 10);
my $took = time - $t0;
kill 'KILL', $kid;
waitpid($kid, 0);
ScriptingGate::Util::reap($bg);
html_put('result.txt', "pid taken: $taken\n"
         . "next request: $res->{status}"
         . ($took < 3 ? " within the queue timeout" : " after $took s") . "\n");
--- request
GET /result.txt
--- response_body
pid taken: 2
next request: 200 within the queue timeout
--- timeout: 40
