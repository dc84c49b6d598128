# Async jobs obey the location's proxy (issue 15, point 3): a job sends the
# headers its proxy would send (proxy_set_header, with the proxy's defaults,
# and proxy_pass_request_headers), never the client's X-Forwarded-* or
# X-Real-IP as they came; a replayed result hides what the proxy hides
# (proxy_hide_header, nginx's own hidden ones, less proxy_pass_header).

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get wait_until);
use JSON::PP qw(decode_json);

ScriptingGate::Mock::start(delay => 0);

# an upstream of the jobs that sets headers, in the nginx under test
$ENV{TEST_NGINX_HEADERS_PORT} = ScriptingGate::Util::server_port() + 1;

master_on();
workers(2);
worker_connections(1024);
log_level('info');
no_shuffle();

our $HttpConfig = <<'_EOC_';
    scripting_async_zone zone=jobs:1m ttl=1m;
_EOC_

our $Jobs = <<'_EOC_';
    location /scripting-gate/jobs/ {
        scripting_async_jobs zone=jobs;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig)
        unless defined $block->http_config;
    $block->set_value('config', $block->config . $Jobs)
        if defined $block->config;
});

# submits a GET as a job, waits for its end; its replayed result
sub result {
    my ($path, %h) = @_;
    my $res = http_get($path, headers => { 'Prefer' => 'respond-async', %h });
    my $loc = $res->{headers}{location} || '/none';
    wait_until(10, sub {
        my $job = eval { decode_json(http_get($loc)->{content}) } || {};
        ($job->{state} // '') =~ /^(succeeded|failed)$/;
    });
    return http_get("$loc/result");
}

# the headers the mock got (X-Mock-Echo-Headers), those named, in order
sub got {
    my ($res, @names) = @_;
    my $all = eval { decode_json($res->{content}) };
    return "not echoed: $res->{content}\n" if ref $all ne 'ARRAY';
    my $out = '';
    for my $n (@names) {
        my @v = map { $_->[1] } grep { lc $_->[0] eq lc $n } @$all;
        $out .= "$n: " . (@v ? join(' | ', @v) : '(none)') . "\n";
    }
    $out =~ s/\b\Q$ENV{TEST_NGINX_MOCK_PORT}\E\b/MOCK/g;
    return $out;
}

run_tests();

__DATA__

=== TEST 1: proxy_set_header (inherited from the server) overrides the client's X-Tenant; an empty value removes one; the client's other headers pass; Host is pass's
--- config
    proxy_set_header X-Tenant set-by-gateway;

    location /api/v2/scripts/ {
        proxy_set_header X-Tenant set-by-gateway;
        proxy_set_header X-Drop "";
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }

    location /api/v2/scripts/inherited/ {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
my %h = ('X-Mock-Echo-Headers' => 1, 'X-Tenant' => 'evil',
         'X-Drop' => 'x', 'X-Client' => 'kept');
my $a = result('/api/v2/scripts/t1', %h);
my $b = result("/api/v2/scripts/inherited/t1", %h);
html_put('result.txt', "$a->{status}\n"
    . got($a, qw(X-Tenant X-Drop X-Client Host Prefer Connection))
    . "inherited: $b->{status}\n" . got($b, qw(X-Tenant X-Drop X-Client)));
--- request
GET /result.txt
--- response_body
200
X-Tenant: set-by-gateway
X-Drop: (none)
X-Client: kept
Host: 127.0.0.1:MOCK
Prefer: (none)
Connection: (none)
inherited: 200
X-Tenant: set-by-gateway
X-Drop: x
X-Client: kept
--- timeout: 20



=== TEST 2: the client's X-Forwarded-For, X-Forwarded-Host, X-Real-IP and Forwarded are not forwarded as they came
--- config
    location /api/v2/scripts/ {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
my $r = result('/api/v2/scripts/t2', 'X-Mock-Echo-Headers' => 1,
               'X-Forwarded-For' => '6.6.6.6', 'X-Forwarded-Host' => 'evil',
               'X-Real-IP' => '6.6.6.6', 'Forwarded' => 'for=6.6.6.6',
               'X-Client' => 'kept');
html_put('result.txt', "$r->{status}\n"
    . got($r, qw(X-Forwarded-For X-Forwarded-Host X-Real-IP Forwarded
                 X-Client)));
--- request
GET /result.txt
--- response_body
200
X-Forwarded-For: (none)
X-Forwarded-Host: (none)
X-Real-IP: (none)
Forwarded: (none)
X-Client: kept
--- timeout: 20



=== TEST 3: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for and X-Real-IP $remote_addr send nginx's values
--- config
    location /api/v2/scripts/ {
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Path $uri;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
my $r = result('/api/v2/scripts/t3', 'X-Mock-Echo-Headers' => 1,
               'X-Forwarded-For' => '6.6.6.6', 'X-Real-IP' => '6.6.6.6');
html_put('result.txt', "$r->{status}\n"
    . got($r, qw(X-Forwarded-For X-Real-IP X-Path)));
--- request
GET /result.txt
--- response_body
200
X-Forwarded-For: 6.6.6.6, 127.0.0.1
X-Real-IP: 127.0.0.1
X-Path: /api/v2/scripts/t3
--- timeout: 20



=== TEST 4: proxy_pass_request_headers off: none of the client's headers, only those proxy_set_header sends (and none of curl's defaults)
--- config
    location /api/v2/scripts/ {
        proxy_pass_request_headers off;
        proxy_set_header X-Mock-Echo-Headers 1;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
my $r = result('/api/v2/scripts/t4', 'X-Tenant' => 'evil',
               'X-Client' => 'dropped', 'Content-Type' => 'text/plain',
               'Accept' => 'text/plain');
my $all = eval { decode_json($r->{content}) };
$all = [[ "not echoed: $r->{content}" ]] if ref $all ne 'ARRAY';
html_put('result.txt', "$r->{status}\n"
    . join('', map { "$_->[0]\n" } grep { $_->[0] ne 'Host' } @$all));
--- request
GET /result.txt
--- response_body
200
X-Mock-Echo-Headers
--- timeout: 20



=== TEST 5: proxy_hide_header X-Internal hides it from the replayed result, as nginx's hidden ones (X-Accel-*); proxy_pass_header shows X-Pad, and the upstream's Server instead of nginx's
--- http_config
    scripting_async_zone zone=jobs:1m ttl=1m;

    server {
        listen 127.0.0.1:$TEST_NGINX_HEADERS_PORT;
        server_tokens off;

        location / {
            add_header X-Internal secret;
            add_header X-Public yes;
            add_header X-Pad pad;
            add_header X-Accel-Charset utf-8;
            return 200 "ok\n";
        }
    }
--- config
    location /api/v2/scripts/ {
        proxy_hide_header X-Internal;
        proxy_pass_header X-Pad;
        proxy_pass_header Server;
        scripting_async zone=jobs
                        pass=http://127.0.0.1:$TEST_NGINX_HEADERS_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
my $r = result('/api/v2/scripts/t5');
my $h = sub {
    my $v = $r->{headers}{lc $_[0]} // '(none)';
    return "$_[0]: " . (ref $v ? join(' | ', @$v) : $v) . "\n";
};
html_put('result.txt', "$r->{status} $r->{content}"
    . join('', map { $h->($_) }
                   qw(X-Internal X-Public X-Pad X-Accel-Charset Server)));
--- request
GET /result.txt
--- response_body
200 ok
X-Internal: (none)
X-Public: yes
X-Pad: pad
X-Accel-Charset: (none)
Server: nginx
--- timeout: 20



=== TEST 6: proxy_set_header Host $host is sent; the connection's headers it names are not (curl's)
--- config
    location /api/v2/scripts/ {
        proxy_set_header Host $host;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
my $r = result('/api/v2/scripts/t6', 'X-Mock-Echo-Headers' => 1,
               'Upgrade' => 'websocket');
html_put('result.txt', "$r->{status}\n"
    . got($r, qw(Host Upgrade Connection)));
--- request
GET /result.txt
--- response_body
200
Host: 127.0.0.1
Upgrade: (none)
Connection: (none)
--- timeout: 20
