# Hardening (issue 15, points 5 to 7): callback URLs checked by libcurl's
# URL API and by path segments; control bytes of keys and URIs escaped in
# the module's error-log lines; wake-up sockets named by pid and a
# per-start nonce, so that two instances whose workers have the same pids
# (containers of one pod: PID namespaces of their own, one network
# namespace) both gate.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get wait_until servroot);
use JSON::PP qw(decode_json);
use File::Path ();
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
