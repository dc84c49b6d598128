# Hardening (issue 15): the JSON body parse is bounded in size and memory;
# a job belongs to its submitter, its replayed result carries no cookie
# and its JSON no query string; a full job store makes room from finished
# jobs, a submitter has a quota of jobs under way, a worker a cap on the
# bodies its pending jobs hold in memory, and bodies in temporary files
# stay there.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get wait_until worker_pids);
use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep);

ScriptingGate::Mock::start(delay => 0);

# an upstream of the jobs that sets a cookie, in the nginx under test
$ENV{TEST_NGINX_COOKIE_PORT} = ScriptingGate::Util::server_port() + 1;

master_on();
workers(2);
worker_connections(1024);
log_level('info');
no_shuffle();

our $HttpConfig = <<'_EOC_';
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_json_var   $vid  /versionId;
    scripting_async_zone zone=jobs:1m ttl=1m;

    upstream mock {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 16;
    }
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
        if defined $block->config && !defined $block->must_die;
});

sub submit {
    my ($path, %opt) = @_;
    my $res = http_get($path, method => $opt{method} || 'POST',
                       body => $opt{body},
                       headers => { 'Prefer' => 'respond-async',
                                    %{ $opt{headers} || {} } });
    my $job = eval { decode_json($res->{content}) } || {};
    return ($res, $job);
}

sub job {
    my ($location, %h) = @_;
    my $res = http_get($location, headers => \%h);
    return (eval { decode_json($res->{content}) } || {}, $res->{status},
            $res->{content});
}

sub job_until {
    my ($location, $cond, $secs, %h) = @_;
    my $job;
    wait_until($secs || 10, sub { ($job) = job($location, %h); $cond->($job) });
    return $job;
}

# the peak resident size (VmHWM, kB) of each worker
sub peaks {
    my %kb;
    for my $pid (worker_pids()) {
        open my $fh, '<', "/proc/$pid/status" or next;
        while (<$fh>) { $kb{$pid} = $1 if /^VmHWM:\s+(\d+) kB/ }
        close $fh;
    }
    return \%kb;
}

# the most any worker's peak grew between two peaks(), in MB
sub growth {
    my ($before, $after) = @_;
    my $max = 0;
    for my $pid (keys %$after) {
        next unless exists $before->{$pid};
        my $d = $after->{$pid} - $before->{$pid};
        $max = $d if $d > $max;
    }
    return $max / 1024;
}

sub post_json {
    my ($body) = @_;
    my $res = http_get('/api/v2/scripts/j/export', method => 'POST',
                       body => $body,
                       headers => { 'Content-Type' => 'application/json',
                                    'X-Mock-Echo' => 1 });
    return "$res->{status} vid=" . ($res->{headers}{'x-vid'} // '?');
}

# about 1 MB of [{},{},...]: under the old 1 MB limit, and tens of times
# its size in jansson's objects
our $Objects = '[' . join(',', ('{}') x 333_000) . ']';

run_tests();

__DATA__

=== TEST 1: JSON: a 1 MB [{},{},...] body is not parsed by default (logged), the workers' peak RSS barely grows, a small document still works
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        client_max_body_size 2m;
        scripting_gate zone=s limit=2;
        add_header X-Vid "[$vid]" always;
        proxy_pass http://mock;
    }
--- init
package main;
my $before = peaks();
my $big = post_json($main::Objects);
sleep 0.2;
my $grew = growth($before, peaks());
html_put('result.txt', join '',
    "big: $big\n",
    "peak RSS growth: ", ($grew < 16 ? "under 16 MB" : sprintf("%.0f MB", $grew)), "\n",
    "small: ", post_json('{"versionId":"v7"}'), "\n");
--- request
GET /result.txt
--- response_body
big: 200 vid=[]
peak RSS growth: under 16 MB
small: 200 vid=[v7]
--- error_log eval
qr/\[warn\] .*scripting_json_var: request body of 999001 bytes is not parsed, it is larger than scripting_json_max_size \(65536 bytes\)/
--- timeout: 30



=== TEST 2: JSON: with the size limit raised, the memory budget refuses the same body (logged at warn), the peak barely grows, other values still work
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        client_max_body_size 2m;
        scripting_json_max_size 2m;
        scripting_gate zone=s limit=2;
        add_header X-Vid "[$vid]" always;
        proxy_pass http://mock;
    }
--- init
package main;
my $before = peaks();
my $big = post_json($main::Objects);
sleep 0.2;
my $grew = growth($before, peaks());
my $doc = '{"versionId":"v8","pad":"' . ('p' x 100_000) . '","list":[1,2,3]}';
html_put('result.txt', join '',
    "big: $big\n",
    "peak RSS growth: ", ($grew < 16 ? "under 16 MB" : sprintf("%.0f MB", $grew)), "\n",
    "small: ", post_json('{"versionId":{"a":[1,"x"]}}'), "\n",
    "100 KB of string: ", post_json($doc), "\n");
--- request
GET /result.txt
--- response_body
big: 200 vid=[]
peak RSS growth: under 16 MB
small: 200 vid=[{"a":[1,"x"]}]
100 KB of string: 200 vid=[v8]
--- error_log eval
qr/\[warn\] .*scripting_json_var: request body of 999001 bytes is not parsed, it needs more memory than scripting_json_max_memory \(1048576 bytes\)/
--- timeout: 30



=== TEST 3: a job belongs to its submitter: another Authorization, or none, gets the 404 of an unknown id; the submitter gets the job and its result
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my %a = (Authorization => 'Bearer token-of-a');
my %b = (Authorization => 'Bearer token-of-b');
my ($res) = submit('/api/v2/scripts/own', method => 'GET', headers => \%a);
my $loc = $res->{headers}{location} || '/none';
my $done = job_until($loc, sub { ($_[0]{state} // '') eq 'succeeded' }, 5, %a);
my (undef, $unknown_st, $unknown) = job('/scripting-gate/jobs/' . ('0' x 32), %b);
my @out;
for my $who (['B', %b], ['nobody'], ['A', %a]) {
    my ($name, %h) = @$who;
    my (undef, $st, $body) = job($loc, %h);
    my (undef, $rst, $rbody) = job("$loc/result", %h);
    push @out, "$name: job $st" . ($st == 404 ? ($body eq $unknown ? ' as unknown' : ' differs') : '')
               . ", result $rst" . ($rst == 404 ? ($rbody eq $unknown ? ' as unknown' : ' differs') : '');
}
html_put('result.txt', join '', "submit: $res->{status}\n", "done: $done->{state}\n",
                       map { "$_\n" } @out);
--- request
GET /result.txt
--- response_body
submit: 202
done: succeeded
B: job 404 as unknown, result 404 as unknown
nobody: job 404 as unknown, result 404 as unknown
A: job 200, result 200
--- timeout: 15



=== TEST 4: owner= names the value that a job belongs to
--- http_config
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_async_zone zone=jobs:1m owner=$http_x_api_key;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res) = submit('/api/v2/scripts/key', method => 'GET',
                   headers => { 'X-Api-Key' => 'k1', Authorization => 'Bearer x' });
my $loc = $res->{headers}{location} || '/none';
my $done = job_until($loc, sub { ($_[0]{state} // '') eq 'succeeded' }, 5, 'X-Api-Key' => 'k1');
my (undef, $other) = job($loc, 'X-Api-Key' => 'k2', Authorization => 'Bearer x');
html_put('result.txt', "done: $done->{state}\nother key: $other\n");
--- request
GET /result.txt
--- response_body
done: succeeded
other key: 404



=== TEST 5: a replayed result carries no Set-Cookie of the upstream; the job's JSON shows the path without the query string
--- http_config
    scripting_async_zone zone=jobs:1m ttl=1m;

    server {
        listen 127.0.0.1:$TEST_NGINX_COOKIE_PORT;

        location / {
            add_header Set-Cookie "sid=secret-session; HttpOnly";
            add_header X-Kept "yes";
            return 200 "args=$args\n";
        }
    }
--- config
    location /api/v2/scripts/ {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_COOKIE_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
my ($res, $j) = submit('/api/v2/scripts/ck/export?access_token=s3cr3t&x=1', method => 'GET');
my $loc = $res->{headers}{location} || '/none';
my $done = job_until($loc, sub { ($_[0]{state} // '') eq 'succeeded' }, 5);
my $r = http_get("$loc/result");
html_put('result.txt', join '',
    "accepted uri: $j->{uri}\n",
    "job uri: $done->{uri}\n",
    "token anywhere in the job: ", (http_get($loc)->{content} =~ /s3cr3t/ ? 'yes' : 'no'), "\n",
    "result: $r->{status} $r->{content}",
    "set-cookie: ", ($r->{headers}{'set-cookie'} // 'none'), "\n",
    "x-kept: ", ($r->{headers}{'x-kept'} // 'none'), "\n");
--- request
GET /result.txt
--- response_body
accepted uri: /api/v2/scripts/ck/export
job uri: /api/v2/scripts/ck/export
token anywhere in the job: no
result: 200 args=access_token=s3cr3t&x=1
set-cookie: none
x-kept: yes
--- timeout: 15



=== TEST 6: with set_cookie=on the upstream's Set-Cookie is replayed
--- http_config
    scripting_async_zone zone=jobs:1m ttl=1m;

    server {
        listen 127.0.0.1:$TEST_NGINX_COOKIE_PORT;

        location / {
            add_header Set-Cookie "sid=kept-session";
            return 200 "ok\n";
        }
    }
--- config
    location /api/v2/cookies/ {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_COOKIE_PORT
                        jobs_uri=/scripting-gate/jobs/ set_cookie=on;
    }
--- init
package main;
my ($res) = submit('/api/v2/cookies/c', method => 'GET');
my $loc = $res->{headers}{location} || '/none';
job_until($loc, sub { ($_[0]{state} // '') eq 'succeeded' }, 5);
my $r = http_get("$loc/result");
html_put('result.txt', "set-cookie: " . ($r->{headers}{'set-cookie'} // 'none') . "\n");
--- request
GET /result.txt
--- response_body
set-cookie: sid=kept-session
--- timeout: 15



=== TEST 7: a full store makes room: expired, then the oldest finished jobs give theirs before a 503
--- http_config
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_async_zone zone=jobs:1m max_jobs=2;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my @loc;
for my $n (1, 2) {
    my ($res) = submit("/api/v2/scripts/room$n", method => 'GET');
    push @loc, $res->{headers}{location} || '/none';
    job_until($loc[-1], sub { ($_[0]{state} // '') eq 'succeeded' }, 5);
}
# the store holds two finished jobs: a third takes the room of the first
my ($third) = submit('/api/v2/scripts/room3', method => 'GET',
                     headers => { 'X-Mock-Action' => '200/delay=2000' });
my (undef, $first) = job($loc[0]);
my (undef, $second) = job($loc[1]);
# the second finished one gives its room to a fourth; then none is left
my ($fourth) = submit('/api/v2/scripts/room4', method => 'GET',
                      headers => { 'X-Mock-Action' => '200/delay=2000' });
my ($fifth) = submit('/api/v2/scripts/room5', method => 'GET');
html_put('result.txt', join '',
    "third: $third->{status}, first job: $first, second job: $second\n",
    "fourth: $fourth->{status}\n",
    "fifth: $fifth->{status} retry-after=", ($fifth->{headers}{'retry-after'} // 'none'), "\n");
--- request
GET /result.txt
--- response_body
third: 202, first job: 404, second job: 200
fourth: 202
fifth: 503 retry-after=1
--- error_log
1 finished job was forgotten to make room in "jobs"
--- timeout: 20



=== TEST 8: a submitter has a quota of jobs under way: over it 429 with Retry-After, other submitters go on
--- http_config
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_async_zone zone=jobs:1m max_owner_jobs=2;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my %slow = ('X-Mock-Action' => '200/delay=2000');
my @a = map { (submit("/api/v2/scripts/q$_", method => 'GET',
                      headers => { %slow, Authorization => 'Bearer a' }))[0] } 1 .. 3;
my ($b) = submit('/api/v2/scripts/qb', method => 'GET',
                 headers => { %slow, Authorization => 'Bearer b' });
my $e = eval { decode_json($a[2]{content}) } || {};
html_put('result.txt', join '',
    "a: ", join(' ', map { $_->{status} } @a), "\n",
    "retry-after: ", ($a[2]{headers}{'retry-after'} // 'none'), "\n",
    "error: ", ($e->{code} // '?'), "\n",
    "b: $b->{status}\n");
--- request
GET /result.txt
--- response_body
a: 202 202 429
retry-after: 1
error: too.many.requests.retry.after
b: 202
--- error_log
has 2 jobs under way in "jobs" (max_owner_jobs), the request is refused
--- timeout: 15



=== TEST 9: the bodies of the jobs pending in a worker are capped: over it 503 with Retry-After, nothing stored
--- http_config
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_async_zone zone=jobs:1m max_pending_body=100k;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        client_max_body_size 1m;
        client_body_buffer_size 1m;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my %slow = ('X-Mock-Action' => '200/delay=2000');
my ($big) = submit('/api/v2/scripts/pb', body => 'x' x 150_000, headers => \%slow);
# 60 KB each: one per worker fits, never two in one worker
my %st;
for my $n (1 .. 6) {
    my ($res) = submit("/api/v2/scripts/pb$n", body => 'y' x 60_000, headers => \%slow);
    $st{$res->{status}}++;
}
my $k = ScriptingGate::Mock::key_stats('pb::');
html_put('result.txt', join '',
    "150 KB: $big->{status} retry-after=", ($big->{headers}{'retry-after'} // 'none'), "\n",
    "60 KB: accepted ", (($st{202} // 0) >= 1 && ($st{202} // 0) <= 2 ? "1 or 2" : $st{202} // 0),
    ", refused ", (($st{503} // 0) >= 4 ? "the rest" : $st{503} // 0), "\n",
    "upstream saw the 150 KB one: ", ($k->{requests} // 0), "\n");
--- request
GET /result.txt
--- response_body
150 KB: 503 retry-after=1
60 KB: accepted 1 or 2, refused the rest
upstream saw the 150 KB one: 0
--- error_log
bodies of the jobs pending in this worker would exceed max_pending_body
--- timeout: 20



=== TEST 10: a body that nginx wrote to a temporary file stays there: it does not count against max_pending_body, and is sent byte for byte on each attempt
--- http_config
    scripting_async_zone zone=jobs:1m max_pending_body=64k;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        client_max_body_size 1m;
        client_body_buffer_size 16k;
        scripting_retry on=429 attempts=3 base=10ms cap=20ms deadline=10s;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('fb::', '429/ra=none', '200/echo');
my $body = join '', map { sprintf "%07d\n", $_ } 1 .. 25_000;
my ($res) = submit('/api/v2/scripts/fb', body => $body,
                   headers => { 'Content-Type' => 'text/plain' });
my $loc = $res->{headers}{location} || '/none';
my $j = job_until($loc, sub { ($_[0]{state} // '') =~ /succeeded|failed/ }, 10);
my $r = http_get("$loc/result");
my $k = ScriptingGate::Mock::key_stats('fb::');
html_put('result.txt', join '',
    "submit: $res->{status}\n",
    "job: $j->{state} attempts=$j->{attempts}\n",
    "result: $r->{status} ", ($r->{content} eq $body ? 'the body' : length($r->{content}) . ' bytes'), "\n",
    "upstream: requests=$k->{requests} distinct_bodies=$k->{distinct_bodies} last_body_len=$k->{last_body_len}\n");
--- request
GET /result.txt
--- response_body
submit: 202
job: succeeded attempts=2
result: 200 the body
upstream: requests=2 distinct_bodies=1 last_body_len=200000
--- timeout: 20



=== TEST 11: unknown or invalid parameters of the new settings fail the configuration
--- http_config
    scripting_async_zone zone=jobs:1m max_owner_jobs=0;
--- config
    location /api/ {
        return 200;
    }
--- must_die
--- error_log
invalid max_owner_jobs "max_owner_jobs=0"
