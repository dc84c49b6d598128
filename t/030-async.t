# Async mode: Prefer: respond-async gets 202 and a job that runs in the
# background under the same gate and retry policy; the jobs endpoint; the
# store's limits; callbacks; a worker that dies under a job.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get status_json wait_until
                           background reap master_pid worker_pids
                           error_log_has);
use JSON::PP qw(decode_json);
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

our $Jobs = <<'_EOC_';
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
    $block->set_value('config', $block->config . $Jobs)
        if defined $block->config && !defined $block->must_die;
});

# submits a job; returns the 202 (or whatever came) and the job's JSON
sub submit {
    my ($path, %opt) = @_;
    my $res = http_get($path, method => $opt{method} || 'POST',
                       body => $opt{body},
                       headers => { 'Prefer' => 'respond-async',
                                    'Content-Type' => 'application/json',
                                    %{ $opt{headers} || {} } });
    my $job = eval { decode_json($res->{content}) } || {};
    return ($res, $job);
}

sub job {
    my ($location) = @_;
    my $res = http_get($location);
    return (eval { decode_json($res->{content}) } || {}, $res->{status});
}

# polls the job until $cond holds of it, for at most $secs
sub job_until {
    my ($location, $cond, $secs) = @_;
    my $job;
    wait_until($secs || 10, sub { ($job) = job($location); $cond->($job) });
    return $job;
}

run_tests();

__DATA__

=== TEST 1: Prefer: respond-async gets 202 at once while the mock answers 429 twice, then the job succeeds with the 200 byte for byte
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=2;
        scripting_retry on=429 attempts=3 deadline=10s;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('a1::v1', '429/ra=1', '429/ra=1', '200/echo');
my $body = '{"fileName":"a.json","versionId":"v1"}';
my $t0 = time;
my ($res, $j) = submit('/api/v2/scripts/a1/export', body => $body);
my $took = time - $t0;
my $loc = $res->{headers}{location} || '';
my $running = job_until($loc, sub { $_[0]{state} eq 'running' }, 5);
my $done = job_until($loc, sub { $_[0]{state} =~ /succeeded|failed/ }, 10);
my $result = http_get("$loc/result");
my $k = ScriptingGate::Mock::key_stats('a1::v1');
html_put('result.txt', join '',
    "submit: $res->{status} ", ($took < 0.5 ? "at once" : "slow ($took)"), "\n",
    "preference-applied: $res->{headers}{'preference-applied'}\n",
    "location: ", ($loc =~ m{^/scripting-gate/jobs/[0-9a-f]{32}$} ? 'ok' : $loc), "\n",
    "accepted: state=$j->{state} id=", ($j->{id} && "/scripting-gate/jobs/$j->{id}" eq $loc ? 'ok' : 'bad'), "\n",
    "seen running: ", ($running->{state} // ''), "\n",
    "done: state=$done->{state} status=$done->{status} attempts=$done->{attempts}\n",
    "result: $result->{status} $result->{headers}{'content-type'} $result->{content}\n",
    "upstream: requests=$k->{requests} distinct_bodies=$k->{distinct_bodies}\n");
--- request
GET /result.txt
--- response_body
submit: 202 at once
preference-applied: respond-async
location: ok
accepted: state=queued id=ok
seen running: running
done: state=succeeded status=200 attempts=3
result: 200 application/json {"fileName":"a.json","versionId":"v1"}
upstream: requests=3 distinct_bodies=1
--- timeout: 20



=== TEST 2: without Prefer: respond-async the location proxies as usual
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
        proxy_pass http://mock;
    }
--- request
GET /api/v2/scripts/plain?scriptDataVersion=3
--- response_body chomp
{"id":"plain","name":"Script plain","versionId":"3"}
--- response_headers
! Preference-Applied



=== TEST 3: a burst of async jobs never exceeds the per-key limit at the mock
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=2 queue=2 queue_timeout=1s;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
# 12 jobs of 300 ms each, limit 2, queue 2: the gate turns most away at
# first, and the jobs wait for it rather than fail
my $kids = background(map { ["/api/v2/scripts/burst?scriptDataVersion=1",
                             headers => { 'Prefer' => 'respond-async',
                                          'X-Mock-Action' => '200/delay=300' }] } 1 .. 12);
my %st; $st{ $_->[0] }++ for reap($kids);
my $all;
wait_until(15, sub {
    my $s = status_json('/status');
    $all = $s->{jobs}{jobs};
    $all && $all->{succeeded} + $all->{failed} >= 12 });
my $k = ScriptingGate::Mock::key_stats('burst:1:');
html_put('result.txt', join('', map { "client $_ x $st{$_}\n" } sort keys %st)
         . "jobs: accepted=$all->{accepted} succeeded=$all->{succeeded} failed=$all->{failed}\n"
         . "upstream: requests=$k->{requests} peak=$k->{peak_in_flight}\n");
--- request
GET /result.txt
--- response_body
client 202 x 12
jobs: accepted=12 succeeded=12 failed=0
upstream: requests=12 peak=2
--- timeout: 25



=== TEST 4: a full store refuses with 503 and Retry-After before accepting anything
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
my @r = map { (submit("/api/v2/scripts/full$_", method => 'GET',
                      headers => { 'X-Mock-Action' => '200/delay=2000' }))[0] } 1 .. 3;
my $third = $r[2];
my $e = eval { decode_json($third->{content}) } || {};
sleep 0.3;
my $k = ScriptingGate::Mock::key_stats('full3::');
html_put('result.txt', join '',
    "statuses: ", join(' ', map { $_->{status} } @r), "\n",
    "retry-after: ", ($third->{headers}{'retry-after'} // 'none'), "\n",
    "error: $e->{status} $e->{code}\n",
    "upstream saw the third: $k->{requests}\n");
--- request
GET /result.txt
--- response_body
statuses: 202 202 503
retry-after: 1
error: 503 service.unavailable
upstream saw the third: 0
--- timeout: 10



=== TEST 5: unknown, malformed and expired ids give 404
--- http_config
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_async_zone zone=jobs:1m ttl=1s;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res) = submit('/api/v2/scripts/exp', method => 'GET');
my $loc = $res->{headers}{location};
my $done = job_until($loc, sub { $_[0]{state} eq 'succeeded' }, 5);
my $exp = job_until($loc, sub { $_[0]{state} eq 'expired' }, 5);
my (undef, $st) = job($loc);
my $r = http_get("$loc/result");
html_put('result.txt', join '',
    "done: $done->{state}\n",
    "later: $exp->{state} $st, result $r->{status}\n",
    "unknown: ", http_get('/scripting-gate/jobs/' . ('0' x 32))->{status}, "\n",
    "malformed: ", http_get('/scripting-gate/jobs/xyz')->{status}, "\n",
    "upper case: ", http_get('/scripting-gate/jobs/' . uc substr($loc, -32))->{status}, "\n");
--- request
GET /result.txt
--- response_body
done: succeeded
later: expired 404, result 404
unknown: 404
malformed: 404
upper case: 404
--- timeout: 15



=== TEST 6: a callback to a prefix that is not allowed is refused at submission
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/
                        callback_allow=https://hooks.example.com/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my @r;
for my $url ('https://hooks.example.com.evil.test/x', 'http://127.0.0.1:1/',
             'https://hooks.example.com') {
    my ($res, $j) = submit('/api/v2/scripts/cbx', method => 'GET',
                           headers => { 'Callback-Url' => $url });
    push @r, "$res->{status} $j->{code}";
}
sleep 0.2;
my $k = ScriptingGate::Mock::key_stats('cbx::');
my $s = status_json('/status');
html_put('result.txt', join('', map { "$_\n" } @r)
         . "upstream: $k->{requests}, accepted: " . ($s->{jobs}{jobs}{accepted} // 0) . "\n");
--- request
GET /result.txt
--- response_body
400 bad.request
400 bad.request
400 bad.request
upstream: 0, accepted: 0
--- error_log
callback URL "https://hooks.example.com.evil.test/x" is not allowed



=== TEST 7: an allowed callback receives the finished job's JSON
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/
                        callback_allow=http://127.0.0.1:$TEST_NGINX_MOCK_PORT/api/v2/scripts/hook/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('hook::', '200/echo');
my ($res) = submit('/api/v2/scripts/cb7', method => 'GET',
                   headers => { 'Callback-Url' =>
                       ScriptingGate::Mock::url('/api/v2/scripts/hook/done') });
my $loc = $res->{headers}{location};
my $j = job_until($loc, sub { ($_[0]{callback}{state} // '') =~ /delivered|failed/ }, 10);
my $k = ScriptingGate::Mock::key_stats('hook::');
html_put('result.txt', join '',
    "job: $j->{state}\n",
    "callback: $j->{callback}{state} $j->{callback}{status} $j->{callback}{attempts}\n",
    "hook saw: $k->{requests} body of ", ($k->{last_body_len} > 100 ? 'a job' : $k->{last_body_len}), "\n");
--- request
GET /result.txt
--- response_body
job: succeeded
callback: delivered 200 1
hook saw: 1 body of a job
--- timeout: 15



=== TEST 8: kill -9 of the worker running a job: the job does not stay running
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res) = submit('/api/v2/scripts/k9', method => 'GET',
                   headers => { 'X-Mock-Action' => '200/delay=8000' });
my $loc = $res->{headers}{location};
job_until($loc, sub { $_[0]{state} eq 'running' }, 5);
# both workers: the one running it is among them; the master starts others
kill 'KILL', worker_pids();
my $t0 = time;
my $j = job_until($loc, sub { $_[0]{state} ne 'running' }, 8);
my $took = time - $t0;
html_put('result.txt', join '',
    "state: $j->{state}\n",
    "reason: ", ($j->{reason} =~ /worker process running the job \(pid \d+\) exited/ ? 'worker exited' : $j->{reason}), "\n",
    "within seconds: ", ($took < 4 ? 'yes' : "no ($took)"), "\n");
--- request
GET /result.txt
--- response_body
state: failed
reason: worker exited
within seconds: yes
--- timeout: 20



=== TEST 9: a result larger than max_result fails the job with a reason, it is not cut
--- http_config
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_async_zone zone=jobs:1m max_result=4k;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res) = submit('/api/v2/scripts/big', method => 'GET',
                   headers => { 'X-Mock-Size' => 100000 });
my $j = job_until($res->{headers}{location}, sub { $_[0]{state} =~ /succeeded|failed/ }, 5);
my $r = http_get("$res->{headers}{location}/result");
html_put('result.txt', "$j->{state}: $j->{reason}\nresult: $r->{status}\n");
--- request
GET /result.txt
--- response_body
failed: the result is larger than max_result (4096 bytes)
result: 502



=== TEST 10: the job's upstream sees the client's method, URI, headers and body, not the hop-by-hop ones
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res) = submit('/api/v2/scripts/hdr/export?x=1', method => 'PUT',
                   body => '{"versionId":"v9"}',
                   headers => { 'X-Mock-Action' => '200/echo',
                                'Content-Type' => 'text/x-mine' });
my $j = job_until($res->{headers}{location}, sub { $_[0]{state} =~ /succeeded|failed/ }, 5);
my $r = http_get("$res->{headers}{location}/result");
my $k = ScriptingGate::Mock::key_stats('hdr::v9');
html_put('result.txt', join '',
    "job: $j->{state} $j->{method} $j->{uri}\n",
    "result: $r->{status} $r->{headers}{'content-type'} $r->{content}\n",
    "upstream: $k->{requests}\n");
--- request
GET /result.txt
--- response_body
job: succeeded PUT /api/v2/scripts/hdr/export
result: 200 text/x-mine {"versionId":"v9"}
upstream: 1
--- timeout: 10



=== TEST 11: scripting_async without pass fails the configuration, naming it
--- config
    location /api/ {
        scripting_async zone=jobs jobs_uri=/jobs/;
    }
--- must_die
--- error_log
"scripting_async" must have "zone", "pass" and "jobs_uri" parameters



=== TEST 12: a pass with a path fails the configuration
--- config
    location /api/ {
        scripting_async zone=jobs pass=http://127.0.0.1:1/api jobs_uri=/jobs/;
    }
--- must_die
--- error_log
invalid pass "pass=http://127.0.0.1:1/api"



=== TEST 13: a callback prefix without a path fails the configuration
--- config
    location /api/ {
        scripting_async zone=jobs pass=http://127.0.0.1:1 jobs_uri=/jobs/
                        callback_allow=https://hooks.example.com;
    }
--- must_die
--- error_log
invalid callback_allow "callback_allow=https://hooks.example.com"



=== TEST 14: an unknown parameter of scripting_async_zone fails the configuration
--- http_config
    scripting_async_zone zone=jobs:1m ttl=1m lifetime=2m;
--- config
    location /api/ {
        return 200;
    }
--- must_die
--- error_log
invalid parameter "lifetime=2m"



=== TEST 15: on nginx -s reload a running job finishes in the old worker
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res) = submit('/api/v2/scripts/rl', method => 'GET',
                   headers => { 'X-Mock-Action' => '200/delay=1500' });
my $loc = $res->{headers}{location};
job_until($loc, sub { $_[0]{state} eq 'running' }, 5);
my @old = worker_pids();
kill 'HUP', master_pid();
# new workers start while the job runs in an old one
my %o = map { $_ => 1 } @old;
my $new = wait_until(5, sub { grep { !$o{$_} } worker_pids() });
my $still = $new && (grep { $o{$_} } worker_pids()) ? 'yes' : 'no';
my $j = job_until($loc, sub { $_[0]{state} ne 'running' }, 8);
html_put('result.txt', "reloaded: " . ($new ? 'yes' : 'no') . "\n"
                       . "an old worker still runs: $still\n"
                       . "job: $j->{state} $j->{status}\n");
--- request
GET /result.txt
--- response_body
reloaded: yes
an old worker still runs: yes
job: succeeded 200
--- no_error_log
open socket
aborting
--- timeout: 20



=== TEST 16: the jobs' figures in Prometheus text
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res) = submit('/api/v2/scripts/prom', method => 'GET');
job_until($res->{headers}{location}, sub { $_[0]{state} eq 'succeeded' }, 5);
--- request
GET /status?format=prometheus
--- response_body_like
# TYPE scripting_gate_jobs_accepted_total counter
scripting_gate_jobs_accepted_total\{zone="jobs"\} 1
(?s:.*)scripting_gate_jobs_succeeded_total\{zone="jobs"\} 1



=== TEST 17: a key and a URI that are not UTF-8 are shown escaped; the job runs
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=2;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res, $j) = submit('/api/v2/scripts/%FF/x', method => 'GET');
my $done = job_until($res->{headers}{location} || '/none',
                     sub { ($_[0]{state} // '') =~ /succeeded|failed/ }, 5);
html_put('result.txt', "submit: $res->{status}\nkey: $j->{key}\ndone: $done->{state}\n");
--- request
GET /result.txt
--- response_body
submit: 202
key: \xFF
done: succeeded



=== TEST 18: a callback URL with dot segments or encoded separators is refused
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/
                        callback_allow=http://127.0.0.1:$TEST_NGINX_MOCK_PORT/api/v2/scripts/hook/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my $base = ScriptingGate::Mock::url('/api/v2/scripts/hook');
my @r;
for my $tail ('/../secret/x', '/./x', '/..', '/%2e%2e/secret', '/a%2Fb', '/ok') {
    my ($res) = submit('/api/v2/scripts/dots', method => 'GET',
                       headers => { 'Callback-Url' => "$base$tail" });
    push @r, "$tail $res->{status}";
}
html_put('result.txt', join('', map { "$_\n" } @r));
--- request
GET /result.txt
--- response_body
/../secret/x 400
/./x 400
/.. 400
/%2e%2e/secret 400
/a%2Fb 400
/ok 202



=== TEST 19: max_result bounds the headers and the body together
--- http_config
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_async_zone zone=jobs:1m max_result=4k;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my @r;
for my $size (3500, 4090) {
    my ($res) = submit('/api/v2/scripts/sz', method => 'GET',
                       headers => { 'X-Mock-Size' => $size });
    my $j = job_until($res->{headers}{location}, sub { $_[0]{state} =~ /succeeded|failed/ }, 5);
    push @r, "$size: $j->{state}";
}
html_put('result.txt', join('', map { "$_\n" } @r));
--- request
GET /result.txt
--- response_body
3500: succeeded
4090: failed



=== TEST 20: scripting_async at server level: the jobs and status endpoints that inherit it are never jobs
--- config
    scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                    jobs_uri=/scripting-gate/jobs/;
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res) = submit('/api/v2/scripts/srv', method => 'GET');
my $j = job_until($res->{headers}{location}, sub { $_[0]{state} eq 'succeeded' }, 5);
my $again = http_get($res->{headers}{location},
                     headers => { 'Prefer' => 'respond-async' });
my $status = http_get('/status', headers => { 'Prefer' => 'respond-async' });
html_put('result.txt', "submit: $res->{status}\njob: $j->{state}\n"
                       . "poll with Prefer: $again->{status} "
                       . ($again->{headers}{'preference-applied'} // 'not applied') . "\n"
                       . "status with Prefer: $status->{status} "
                       . ($status->{headers}{'preference-applied'} // 'not applied') . "\n");
--- request
GET /result.txt
--- response_body
submit: 202
job: succeeded
poll with Prefer: 200 not applied
status with Prefer: 200 not applied



=== TEST 21: on nginx -s reload, worker_shutdown_timeout ends the jobs the old worker still runs
--- main_config
    worker_shutdown_timeout 1s;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res) = submit('/api/v2/scripts/sd', method => 'GET',
                   headers => { 'X-Mock-Action' => '200/delay=20000' });
my $loc = $res->{headers}{location};
job_until($loc, sub { $_[0]{state} eq 'running' }, 5);
my @old = worker_pids();
my $t0 = time;
kill 'HUP', master_pid();
my $j = job_until($loc, sub { $_[0]{state} ne 'running' }, 10);
my $took = time - $t0;
my %o = map { $_ => 1 } @old;
my $gone = wait_until(5, sub { !grep { $o{$_} } worker_pids() });
html_put('result.txt', "job: $j->{state} $j->{reason}\n"
                       . "within 5 s: " . ($took < 5 ? 'yes' : "no ($took)") . "\n"
                       . "old workers gone: " . ($gone ? 'yes' : 'no') . "\n");
--- request
GET /result.txt
--- response_body
job: failed the worker process running the job shut down (worker_shutdown_timeout)
within 5 s: yes
old workers gone: yes
--- error_log
scripting_async: worker_shutdown_timeout: the jobs still running here fail
--- no_error_log
open socket
aborting
--- timeout: 20



=== TEST 22: jobs whose last answer is an error fail, with that status and the answer as their result
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_retry on=429 attempts=3 base=10ms cap=20ms deadline=10s;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('e429::', ('429/ra=none') x 3);
ScriptingGate::Mock::plan('e404::', '404');
ScriptingGate::Mock::plan('e503::v', '503');
my $out = '';
for my $case (['e429', 'GET'], ['e404', 'GET'], ['e503', 'POST']) {
    my ($id, $method) = @$case;
    my ($res) = submit("/api/v2/scripts/$id", method => $method,
                       $method eq 'POST' ? (body => '{"versionId":"v"}') : ());
    my $loc = $res->{headers}{location} || '';
    my $j = job_until($loc, sub { ($_[0]{state} // '') =~ /succeeded|failed/ }, 5);
    my $r = http_get("$loc/result");
    my $body = eval { decode_json($r->{content}) } || {};
    $out .= "$id: $j->{state} status=$j->{status} attempts=$j->{attempts}"
          . " reason=$j->{reason}\n"
          . "$id result: $r->{status} " . ($body->{code} // '?') . "\n";
}
html_put('result.txt', $out);
--- request
GET /result.txt
--- response_body
e429: failed status=429 attempts=3 reason=the upstream answered 429 after 3 attempts
e429 result: 429 too.many.requests
e404: failed status=404 attempts=1 reason=the upstream answered 404 after 1 attempt
e404 result: 404 not.found
e503: failed status=503 attempts=1 reason=the upstream answered 503 after 1 attempt
e503 result: 503 service.unavailable
--- timeout: 20



=== TEST 23: with the error log at debug, a job runs and the worker lives (the timers' debug lines name no connection)
--- log_level: debug
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my ($res) = submit('/api/v2/scripts/dbg', method => 'GET');
my $j = job_until($res->{headers}{location} || '',
                  sub { ($_[0]{state} // '') =~ /succeeded|failed/ }, 5);
html_put('result.txt', "job: " . ($j->{state} // 'none') . "\n");
--- request
GET /result.txt
--- response_body
job: succeeded
--- no_error_log
exited on signal



=== TEST 24: a job's retry asks the gate again: two jobs of one key with one slot never overlap at the upstream
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=1 queue=10 queue_timeout=10s;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms deadline=10s;
        scripting_async zone=jobs pass=http://127.0.0.1:$TEST_NGINX_MOCK_PORT
                        jobs_uri=/scripting-gate/jobs/;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('jg::', '429/ra=none/delay=300', '200/delay=300', '200/delay=300');
my ($r1) = submit('/api/v2/scripts/jg', method => 'GET');
my ($r2) = submit('/api/v2/scripts/jg', method => 'GET');
my @j = map { job_until($_->{headers}{location} || '',
                        sub { ($_[0]{state} // '') =~ /succeeded|failed/ }, 10) } $r1, $r2;
my $k = ScriptingGate::Mock::key_stats('jg::');
html_put('result.txt', "jobs: " . join(' ', map { $_->{state} // 'none' } @j) . "\n"
         . "upstream: requests=$k->{requests} peak=$k->{peak_in_flight}\n");
--- request
GET /result.txt
--- response_body
jobs: succeeded succeeded
upstream: requests=3 peak=1
--- timeout: 20
