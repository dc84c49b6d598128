# Genesys' own JavaScript SDK (purecloud-platform-client-v2, pinned in
# t/sdk/package.json; "make test" installs it there with npm ci) as the
# gateway's client, in the SDK's intermediate gateway mode
# (client.setGateway), through the same paths as
# conf-examples/genesys-cloud.conf: logins at /login/oauth/token, ungated;
# API calls at /platform/api/v2/..., under the gate.  The mock takes 2
# requests of a script version at once, for 200 ms each, and answers the
# rest with Genesys' 429; the SDK does not retry, so every 429 that
# reaches it is an error for its caller.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Cwd qw(getcwd);
use IO::Socket::INET;
use JSON::PP qw(decode_json);
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put status_json servroot);

ScriptingGate::Mock::start(limit => 2, delay => 200);

# the loopback server the async jobs go through: a free port
unless ($ENV{TEST_NGINX_JOBS_PORT}) {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp')
        or die "no free port: $!\n";
    $ENV{TEST_NGINX_JOBS_PORT} = $s->sockport;
    close $s;
}

master_on();
workers(2);
worker_connections(1024);
no_shuffle();

# objects as JSON, keys sorted
sub encode_json { return JSON::PP->new->canonical->encode($_[0]) }

our $HttpConfig = <<'_EOC_';
    scripting_gate_zone  $script_key  zone=s:1m;
    scripting_json_var   $body_version_id  /versionId;
    scripting_async_zone zone=jobs:1m ttl=1m;

    upstream mock {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 16;
    }

    # a job sends the URI its client sent, the SDK's API path included
    server {
        listen 127.0.0.1:$TEST_NGINX_JOBS_PORT;
        rewrite ^/platform(/api/.*)$ $1 last;
        location /api/ {
            proxy_pass http://mock;
        }
    }
_EOC_

# the SDK's gateway mode, as conf-examples/genesys-cloud.conf serves it
our $Gateway = <<'_EOC_';
    rewrite ^/platform(/api/.*|/scripting-gate/jobs/.*)$ $1 last;

    location /login/oauth/ {
        proxy_pass http://mock/oauth/;
    }

    location /scripting-gate/jobs/ {
        scripting_async_jobs zone=jobs;
    }

    location = /status {
        scripting_gate_stats;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig)
        unless defined $block->http_config;
    $block->set_value('config', $block->config . $Gateway)
        if defined $block->config;
});

# runs t/sdk/calls.js (the SDK) with these arguments; returns its JSON
# output, decoded, or {error => "..."}
sub sdk {
    my (@args) = @_;
    my $dir = getcwd() . '/t/sdk';
    return { error => "no SDK in $dir/node_modules: run \"npm ci\" there "
                      . "(make test does)" }
        unless -d "$dir/node_modules/purecloud-platform-client-v2";

    # not the SDK configuration file of whoever runs the tests
    local $ENV{HOME} = servroot();
    open my $fh, '-|', 'node', "$dir/calls.js", @args
        or return { error => "cannot run node: $!" };
    my $out = do { local $/; <$fh> };
    close $fh;
    my $res = eval { decode_json($out) };
    return $res || { error => "calls.js exited with " . ($? >> 8) . ": $out" };
}

# the SDK in gateway mode against the server under test
sub gateway {
    return ('--gateway', 'http://127.0.0.1:' . ($ENV{TEST_NGINX_SERVER_PORT}
                                                || $ENV{TEST_NGINX_PORT}
                                                || 1984),
            '--api-path', 'platform', '--login-path', 'login',
            '--client-id', 'sdk-client', '--client-secret', 'sdk-secret');
}

sub calls_report {
    my ($r) = @_;
    return "error: $r->{error}\n" if $r->{error};
    my $c = $r->{calls} || {};
    return "resolved: $c->{resolved}, with the Script: $c->{scripts} "
         . encode_json($c->{first_script}) . "\n"
         . "rejected: $c->{rejected}"
         . join('', map { ", $_ x $c->{statuses}{$_}" }
                    sort keys %{ $c->{statuses} }) . "\n";
}

sub upstream_report {
    my ($key) = @_;
    my $s = ScriptingGate::Mock::stats();
    my $k = $s->{keys}{$key} || {};
    return "upstream: requests=" . ($k->{requests} // 0)
         . " peak=" . ($k->{peak_in_flight} // 0)
         . " 429=" . ($k->{status}{429} // 0)
         . " tokens=" . ($s->{total}{tokens} // 0) . "\n";
}

run_tests();

__DATA__

=== TEST 1: 20 SDK calls at once on one version, limit 2: each resolves with its Script, the upstream sees 20 requests and sends no 429
--- config
    location ~ ^/api/v2/scripts/(?:published/)?(?<script_id>[^/]+) {
        set $script_key "$script_id:$arg_scriptDataVersion:$body_version_id";
        scripting_gate  zone=s limit=2 queue=100 queue_timeout=10s;
        scripting_retry on=429 attempts=3 base=200ms cap=5s deadline=15s;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my $r = sdk(gateway(), '--calls', 20, '--script', 'sdk', '--version', 7);
my $l = $r->{login} || {};
my $st = status_json('/status') || {};
html_put('result.txt',
    "login: " . ($l->{ok} ? "ok, token $l->{token}, expires in $l->{expires_in} s"
                          : encode_json($l)) . "\n"
    . calls_report($r)
    . upstream_report('sdk:7:')
    . "gate keys: " . join(' ', sort keys %{ $st->{zones}{s}{keys} || {} }) . "\n");
--- request
GET /result.txt
--- response_body
login: ok, token set, expires in 86400 s
resolved: 20, with the Script: 20 {"id":"sdk","name":"Script sdk","versionId":"7"}
rejected: 0
upstream: requests=20 peak=2 429=0 tokens=1
gate keys: sdk:7:
--- timeout: 30



=== TEST 2: the same calls straight at the mock: all but 2 reject with the SDK's 429 error
--- config
    set $script_key "";
--- init
package main;
ScriptingGate::Mock::reset();
my $r = sdk('--gateway', "http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}",
            '--client-id', 'sdk-client', '--client-secret', 'sdk-secret',
            '--calls', 20, '--script', 'sdk', '--version', 7);
my $e = $r->{calls}{first_error} || {};
html_put('result.txt', calls_report($r)
    . "error: $e->{status} $e->{code} [$e->{message}]\n"
    . upstream_report('sdk:7:'));
--- request
GET /result.txt
--- response_body
resolved: 2, with the Script: 2 {"id":"sdk","name":"Script sdk","versionId":"7"}
rejected: 18, 429 x 18
error: 429 too.many.requests.retry.after [Rate limit exceeded the maximum. Retry the request in [1] seconds]
upstream: requests=20 peak=2 429=18 tokens=1
--- timeout: 30



=== TEST 3: an async job through the SDK: Prefer: respond-async as a custom header, then the job and its result at the SDK's API path
--- config
    location ~ ^/api/v2/scripts/(?:published/)?(?<script_id>[^/]+) {
        set $script_key "$script_id:$arg_scriptDataVersion:$body_version_id";
        scripting_gate  zone=s limit=2 queue=100 queue_timeout=10s;
        scripting_retry on=429 attempts=3 base=200ms cap=5s deadline=15s;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_JOBS_PORT
                        jobs_uri=/scripting-gate/jobs/;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my $r = sdk(gateway(), '--async', '--script', 'sdk', '--version', 'v9');
my $a = $r->{async} || { error => $r->{error} };
html_put('result.txt',
    ($a->{error} ? "error: " . encode_json($a->{error}) . "\n" : '')
    . "accepted: state=$a->{accepted}{state} location=$a->{accepted}{location}\n"
    . "job: state=$a->{state} attempts=$a->{attempts}\n"
    . "result: " . encode_json($a->{result}) . "\n"
    . upstream_report('sdk::v9'));
--- request
GET /result.txt
--- response_body
accepted: state=queued location=set
job: state=succeeded attempts=1
result: {"url":"https://example.invalid/export/sdk.json"}
upstream: requests=1 peak=1 429=0 tokens=1
--- timeout: 30



=== TEST 4: a call the gate turns away reaches the SDK as Genesys' own 429, with a correlation id in Genesys' shape
--- config
    location ~ ^/api/v2/scripts/(?:published/)?(?<script_id>[^/]+) {
        set $script_key "$script_id:$arg_scriptDataVersion:$body_version_id";
        scripting_gate  zone=s limit=1 queue=0;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my $r = sdk(gateway(), '--calls', 5, '--script', 'full', '--version', 1);
my $e = $r->{calls}{first_error} || {};
html_put('result.txt', calls_report($r)
    . "error: $e->{status} $e->{code}\n"
    . "contextId: " . (($e->{contextId} // '') =~ /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
                       ? 'a UUID' : ($e->{contextId} // 'none')) . "\n"
    . upstream_report('full:1:'));
--- request
GET /result.txt
--- response_body
resolved: 1, with the Script: 1 {"id":"full","name":"Script full","versionId":"1"}
rejected: 4, 429 x 4
error: 429 too.many.requests.retry.after
contextId: a UUID
upstream: requests=1 peak=1 429=0 tokens=1
--- timeout: 30
