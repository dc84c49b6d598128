# Hostile input: malformed, oversized and deeply nested JSON bodies read by
# scripting_json_var; keys at and past their 1024-byte limit; request
# smuggling attempts against a location with the gate and retry (nginx
# must refuse them before the module or the upstream sees anything); a
# flood of keys against a key in use; the status endpoint showing only
# its documented figures, with every key byte escaped in JSON, Prometheus
# text and the page.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use IO::Socket::INET;
use JSON::PP;
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get status_json wait_until
                           background reap error_log_has);

ScriptingGate::Mock::start(delay => 0);

master_on();
workers(2);
worker_connections(1024);
log_level('info');
no_shuffle();

our $HttpConfig = <<'_EOC_';
    scripting_gate_zone  $script_key  zone=s:1m;
    scripting_json_var   $vid  /versionId;
    # the limits these blocks were written for (the defaults are 64k, 1m)
    scripting_json_max_size    1m;
    scripting_json_max_memory  8m;

    upstream mock {
        server 127.0.0.1:$TEST_NGINX_MOCK_PORT;
        keepalive 16;
    }
_EOC_

# the gate and retry, the key from the path and the body
our $Config = <<'_EOC_';
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        client_max_body_size 2m;
        set $script_key "$script_id:$vid";
        scripting_gate zone=s limit=2 queue=10;
        scripting_retry on=429,503 attempts=3 base=10ms cap=50ms deadline=5s;
        add_header X-Gate "[$scripting_gate_status]" always;
        add_header X-Key-Len "$scripting_gate_key" always;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig)
        unless defined $block->http_config;
    $block->set_value('config', $Config) unless defined $block->config;
});

# sends bytes as they are; returns the answer (status, headers, body)
sub raw {
    my ($bytes) = @_;
    local $SIG{PIPE} = 'IGNORE';    # nginx may answer before all is sent
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => ScriptingGate::Util::server_port(),
                                  Timeout => 10) or die "connect: $!";
    $s->autoflush(1);
    print $s $bytes;
    my $res = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 20;
    eval { while (sysread($s, my $buf, 65536)) { $res .= $buf } };
    alarm 0;
    close $s;
    my ($status) = $res =~ m{^HTTP/1\.\d (\d{3})};
    my ($head, $body) = split /\r\n\r\n/, $res, 2;
    return { status => $status // 'none', head => $head // '',
             body => $body // '' };
}

# a POST of the body, echoed by the mock: the status, whether the gate
# took the request, the key's length, and whether the upstream got the
# body byte for byte
sub post_body {
    my ($body, $extra) = @_;
    my $r = raw("POST /api/v2/scripts/x/export HTTP/1.0\r\nHost: localhost\r\n"
                . "X-Mock-Echo: 1\r\n" . ($extra // '')
                . "Content-Length: " . length($body) . "\r\n\r\n" . $body);
    my ($gate) = $r->{head} =~ /^X-Gate: (.*?)\r?$/m;
    my ($key) = $r->{head} =~ /^X-Key-Len: (.*?)\r?$/m;
    $key //= '';
    return "$r->{status} gate=" . ($gate // '?')
           . " key=" . (length($key) > 40 ? length($key) . " bytes" : "[$key]")
           . " body=" . ($r->{body} eq $body ? "intact" : "changed");
}

sub mock_total { return ScriptingGate::Mock::stats()->{total}{requests} }

run_tests();

__DATA__

=== TEST 1: malformed JSON bodies: each is answered, its key is empty, the upstream gets it intact
--- init
package main;
my @cases = (
    [ 'truncated',        '{"versionId": "v1' ],
    [ 'invalid UTF-8',    qq({"versionId": "v\xff\xfe"}) ],
    [ 'overlong UTF-8',   qq({"versionId": "\xc0\xaf"}) ],
    [ 'lone surrogate',   '{"versionId": "\ud800"}' ],
    [ 'NUL escape',       '{"versionId": "a\u0000b"}' ],
    [ 'arrays 10000 deep', '{"versionId": "v1", "a": ' . ('[' x 10000)
                           . (']' x 10000) . '}' ],
    [ 'objects 10000 deep', ('{"a":' x 10000) . '1' . ('}' x 10000) ],
    [ 'unclosed 10000 deep', '[' x 10000 ],
    [ 'huge real',        '{"versionId": 1e999999}' ],
    [ 'huge integer',     '{"versionId": 123456789012345678901234567890}' ],
    [ 'not an object',    '["versionId", "v1"]' ],
    [ 'trailing garbage', '{"versionId": "v1"} {"versionId": "v2"}' ],
    [ 'binary',           join('', map { chr } 0 .. 255) x 4 ],
);
my $out = '';
$out .= "$_->[0]: " . post_body($_->[1]) . "\n" for @cases;
html_put('result.txt', $out);
--- request
GET /result.txt
--- response_body
truncated: 200 gate=[PASSED] key=[x:] body=intact
invalid UTF-8: 200 gate=[PASSED] key=[x:] body=intact
overlong UTF-8: 200 gate=[PASSED] key=[x:] body=intact
lone surrogate: 200 gate=[PASSED] key=[x:] body=intact
NUL escape: 200 gate=[PASSED] key=[x:] body=intact
arrays 10000 deep: 200 gate=[PASSED] key=[x:] body=intact
objects 10000 deep: 200 gate=[PASSED] key=[x:] body=intact
unclosed 10000 deep: 200 gate=[PASSED] key=[x:] body=intact
huge real: 200 gate=[PASSED] key=[x:] body=intact
huge integer: 200 gate=[PASSED] key=[x:] body=intact
not an object: 200 gate=[PASSED] key=[x:] body=intact
trailing garbage: 200 gate=[PASSED] key=[x:] body=intact
binary: 200 gate=[PASSED] key=[x:] body=intact
--- error_log
scripting_json_var: request body is not JSON: premature end of input
scripting_json_var: request body is not JSON: unable to decode byte 0xff
scripting_json_var: request body is not JSON: maximum parsing depth reached
scripting_json_var: request body is not JSON: real number overflow
scripting_json_var: request body is not JSON: too big integer
scripting_json_var: request body is not JSON: \u0000 is not allowed
--- no_error_log
[alert]
[crit]
[emerg]
--- timeout: 30



=== TEST 2: odd but valid JSON: the value the pointer selects, as text or compact JSON
--- init
package main;
my @cases = (
    [ 'string',           '{"versionId": "v-42"}' ],
    [ 'escaped',          '{"versionId": "a\/b\u00e9"}' ],
    [ 'number',           '{"versionId": 42}' ],
    [ 'object',           '{"versionId": {"a": [1, "x", null]}}' ],
    [ 'null',             '{"versionId": null}' ],
    [ 'duplicate names',  '{"versionId": "a", "versionId": "b"}' ],
    [ 'empty body',       '' ],
);
my $out = '';
$out .= "$_->[0]: " . post_body($_->[1]) . "\n" for @cases;
html_put('result.txt', $out);
--- request
GET /result.txt
--- response_body
string: 200 gate=[PASSED] key=[x:v-42] body=intact
escaped: 200 gate=[PASSED] key=[x:a/bé] body=intact
number: 200 gate=[PASSED] key=[x:42] body=intact
object: 200 gate=[PASSED] key=[x:{"a":[1,"x",null]}] body=intact
null: 200 gate=[PASSED] key=[x:] body=intact
duplicate names: 200 gate=[PASSED] key=[x:b] body=intact
empty body: 200 gate=[PASSED] key=[x:] body=intact



=== TEST 3: a key of 1024 bytes is gated as it is, one of 1025 bytes or of 400 KB is logged and gated by its digest
--- init
package main;
my $out = '';
for my $n (1022, 1023, 400_000) {
    $out .= "versionId of $n bytes: "
            . post_body('{"versionId": "' . ('v' x $n) . '"}') . "\n";
}
html_put('result.txt', $out);
--- request
GET /result.txt
--- response_body
versionId of 1022 bytes: 200 gate=[PASSED] key=1024 bytes body=intact
versionId of 1023 bytes: 200 gate=[PASSED] key=1024 bytes body=intact
versionId of 400000 bytes: 200 gate=[PASSED] key=1024 bytes body=intact
--- error_log eval
qr/the value of the "\$script_key" key is more than 1024 bytes: "x:v{62}\.\.\.", the request is gated by its digest/
--- no_error_log
[alert]
[crit]
--- timeout: 30



=== TEST 4: bodies at the size limits: over 1 MB not parsed, from a temporary file parsed, over client_max_body_size refused before the upstream
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        client_max_body_size 1500k;
        client_body_buffer_size 4k;
        set $script_key "$script_id:$vid";
        scripting_gate zone=s limit=2 queue=10;
        scripting_retry on=429,503 attempts=3 base=10ms cap=50ms deadline=5s;
        add_header X-Gate "[$scripting_gate_status]" always;
        add_header X-Key-Len "$scripting_gate_key" always;
        proxy_pass http://mock;
    }
--- init
package main;
ScriptingGate::Mock::reset();
my $pre = '{"versionId": "big", "pad": "';
my $pad = sub { $pre . ('p' x ($_[0] - length($pre) - 2)) . '"}' };
my $out = '';
$out .= "600 KB, spooled to a file: " . post_body($pad->(600_000)) . "\n";
$out .= "1 MB + 1: " . post_body($pad->(1024 * 1024 + 1)) . "\n";
my $before = mock_total();
$out .= "over client_max_body_size: "
        . post_body($pad->(1600 * 1024)) . "\n";
$out .= "the upstream saw it: " . (mock_total() - $before) . " times\n";
html_put('result.txt', $out);
--- request
GET /result.txt
--- response_body
600 KB, spooled to a file: 200 gate=[PASSED] key=[x:big] body=intact
1 MB + 1: 200 gate=[PASSED] key=[x:] body=intact
over client_max_body_size: 413 gate=[] key=[] body=changed
the upstream saw it: 0 times
--- error_log
scripting_json_var: request body of 1048577 bytes is not parsed
client intended to send too large body
--- timeout: 30



=== TEST 5: Content-Length and Transfer-Encoding together are refused with 400
--- raw_request eval
"POST /api/v2/scripts/smuggle/export HTTP/1.1\r
Host: localhost\r
Connection: close\r
Content-Length: 4\r
Transfer-Encoding: chunked\r
\r
0\r
\r
GET /api/v2/scripts/smuggled HTTP/1.1\r
Host: localhost\r
\r
"
--- error_code: 400
--- error_log
client sent "Content-Length" and "Transfer-Encoding" headers at the same time



=== TEST 6: two Content-Length headers are refused with 400
--- raw_request eval
"POST /api/v2/scripts/smuggle/export HTTP/1.1\r
Host: localhost\r
Connection: close\r
Content-Length: 2\r
Content-Length: 40\r
\r
{}"
--- error_code: 400
--- error_log
client sent duplicate header line



=== TEST 7: a bad chunk size is refused with 400
--- raw_request eval
"POST /api/v2/scripts/smuggle/export HTTP/1.1\r
Host: localhost\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
zz\r
{}\r
0\r
\r
"
--- error_code: 400
--- error_log
client sent invalid chunked body



=== TEST 8: smuggling attempts, each refused by nginx; the upstream sees none of them, a valid request after them goes through
--- init
package main;
ScriptingGate::Mock::reset();
my $h = "Host: localhost\r\nConnection: close\r\n";
my $p = "POST /api/v2/scripts/smuggle/export HTTP/1.1\r\n$h";
my @cases = (
    [ 'CL and TE', "${p}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" ],
    [ 'TE and CL', "${p}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" ],
    [ 'two CL', "${p}Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}" ],
    [ 'CL list', "${p}Content-Length: 2, 2\r\n\r\n{}" ],
    [ 'CL negative', "${p}Content-Length: -1\r\n\r\n{}" ],
    [ 'CL overflow', "${p}Content-Length: 99999999999999999999999\r\n\r\n{}" ],
    [ 'bad chunk size', "${p}Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n" ],
    [ 'chunk size overflow', "${p}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n" ],
    [ 'chunk without CRLF', "${p}Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n" ],
    [ 'TE on HTTP/1.0', "POST /api/v2/scripts/smuggle/export HTTP/1.0\r\n$h"
                        . "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" ],
    [ 'two TE', "${p}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" ],
    [ 'TE not chunked', "${p}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" ],
    [ 'space before colon', "${p}Content-Length : 4\r\n\r\n{}{}" ],
    [ 'obs-fold', "${p}Content-Length: 2\r\n 40\r\n\r\n{}" ],
);
my $out = '';
for my $c (@cases) {
    $out .= "$c->[0]: " . raw($c->[1])->{status} . "\n";
}
$out .= "the upstream saw: " . mock_total() . "\n";
$out .= "then a valid one: " . post_body('{"versionId": "v1"}') . "\n";
$out .= "the upstream saw: " . mock_total() . "\n";
html_put('result.txt', $out);
--- request
GET /result.txt
--- response_body
CL and TE: 400
TE and CL: 400
two CL: 400
CL list: 400
CL negative: 400
CL overflow: 400
bad chunk size: 400
chunk size overflow: 400
chunk without CRLF: 400
TE on HTTP/1.0: 400
two TE: 400
TE not chunked: 501
space before colon: 400
obs-fold: 400
the upstream saw: 0
then a valid one: 200 gate=[PASSED] key=[x:v1] body=intact
the upstream saw: 1
--- no_error_log
[alert]
[crit]



=== TEST 9: a flood of random versions in a small zone: a key in use keeps its slots and its count
--- http_config
    scripting_gate_zone  $arg_k  zone=tiny:32k;
    upstream mock { server 127.0.0.1:$TEST_NGINX_MOCK_PORT; }
--- config
    location /api/ {
        scripting_gate zone=tiny limit=2 queue=0;
        proxy_pass http://mock;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
my $held = background(map { ["/api/v2/scripts/f?k=keep",
                             headers => { 'X-Mock-Action' => '200/delay=3000' }] } 1 .. 2);
wait_until(5, sub { (status_json('/status')->{zones}{tiny}{keys}{keep}{active} // 0) == 2 });
my %st;
for my $i (1 .. 400) {
    my $v = join '', map { ('a' .. 'z', 0 .. 9)[rand 36] } 1 .. 36;
    $st{ http_get("/api/v2/scripts/f?k=$v")->{status} }++;
}
my $third = http_get("/api/v2/scripts/f?k=keep")->{status};
my $z = status_json('/status')->{zones}{tiny};
my @r = reap($held);
my $after = http_get("/api/v2/scripts/f?k=keep")->{status};
html_put('result.txt', join('', map { "flood $_ x $st{$_}\n" } sort keys %st)
         . "evicted: " . ($z->{evicted} > 0 ? "yes" : "no") . "\n"
         . "keep while held: active $z->{keys}{keep}{active}, a third gets $third\n"
         . "the held ones: " . join(' ', map { $_->[0] } @r) . "\n"
         . "keep afterwards: $after\n");
--- request
GET /result.txt
--- response_body
flood 200 x 400
evicted: yes
keep while held: active 2, a third gets 429
the held ones: 200 200
keep afterwards: 200
--- timeout: 60



=== TEST 10: the status endpoint shows its documented figures and nothing of the requests but their keys
--- http_config
    scripting_gate_zone  $arg_k  zone=s:1m;
    scripting_json_var   $vid  /versionId;
--- config
    location /api/ {
        scripting_gate zone=s limit=2;
        scripting_retry on=429 attempts=2 base=10ms;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
http_get('/api/v2/scripts/x?k=visible&token=SECRETQUERY',
         method => 'POST', body => '{"versionId": "SECRETBODY"}',
         # on both attempts: the retry sends the same headers
         headers => { 'Authorization' => 'Bearer SECRETTOKEN',
                      'Cookie' => 'session=SECRETCOOKIE',
                      'X-Mock-Action' => '429/ra=none' });
my $j = http_get('/status')->{content};
my $p = http_get('/status?format=prometheus')->{content};
my $h = http_get('/status?format=html')->{content};
my $d = decode_json($j);
my @problems;
my %top = map { $_ => 1 } qw(zones time_ms pid);
my %zone = map { $_ => 1 } qw(keys totals keys_count keys_truncated evicted
                              no_memory retry_budget histograms);
my %key = map { $_ => 1 } qw(limit active queued passed queued_total rejected
                             timed_out upstream_429 retries cooldown_ms
                             effective_limit rate limit_decreases
                             limit_increases);
my %tot = map { $_ => 1 } qw(active queued passed queued_total rejected
                             timed_out upstream_429 retries);
push @problems, "top: $_" for grep { !$top{$_} } keys %$d;
my $z = $d->{zones}{s};
push @problems, "zone: $_" for grep { !$zone{$_} } keys %$z;
push @problems, "totals: $_" for grep { !$tot{$_} } keys %{ $z->{totals} };
push @problems, "retry_budget: $_"
    for grep { !/^(requests|retrying|exhausted)$/ } keys %{ $z->{retry_budget} };
push @problems, "histograms: $_"
    for grep { !/^(queue_wait_ms|upstream_ms)$/ } keys %{ $z->{histograms} };
for my $k (keys %{ $z->{keys} }) {
    push @problems, "key $k: $_" for grep { !$key{$_} } keys %{ $z->{keys}{$k} };
}
my %fam = map { $_ => 1 } qw(limit active waiting cooldown_seconds passed_total
    queued_total rejected_total timed_out_total upstream_429_total
    retries_total effective_limit limit_decreases_total
    limit_increases_total rate_per_second keys evicted_total no_memory_total
    retry_budget_exhausted_total queue_wait_seconds upstream_seconds);
for my $l (split /\n/, $p) {
    my ($f) = $l =~ /^(?:# (?:HELP|TYPE) )?scripting_gate_([a-z_0-9]+)/
        or do { push @problems, "prometheus line: $l"; next };
    $f =~ s/_(bucket|sum|count)$// if !$fam{$f};
    push @problems, "family: $f" unless $fam{$f};
}
for my $out ([json => $j], [prometheus => $p], [html => $h]) {
    push @problems, "$out->[0] shows $1" while $out->[1] =~ /(SECRET[A-Z]+)/g;
    push @problems, "$out->[0] shows an address $1"
        while $out->[1] =~ /(0x[0-9a-fA-F]{6,})/g;
}
html_put('result.txt', "keys: " . join(' ', sort keys %{ $z->{keys} }) . "\n"
         . "upstream_429: $z->{keys}{visible}{upstream_429}\n"
         . (@problems ? join("\n", sort @problems) . "\n" : "nothing else\n"));
--- request
GET /result.txt
--- response_body
keys: visible
upstream_429: 2
nothing else



=== TEST 11: every key byte but NUL, CR and LF is shown so that JSON and Prometheus text stay valid
--- http_config
    scripting_gate_zone  $http_x_k  zone=s:1m;
--- config
    location /api/ {
        scripting_gate zone=s limit=2;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
my @bytes = grep { $_ != 10 && $_ != 13 } 1 .. 255;
my $key = join '', map { chr } @bytes;
my $r = raw("GET /api/v2/scripts/x HTTP/1.0\r\nHost: localhost\r\nX-K: k$key\r\n\r\n");
# the key as the status endpoint must show it: UTF-8 as it is, the
# backslash and any other byte as \xHH; nginx strips the header value's
# leading and trailing spaces, not ours here (k first, byte 255 last)
my $want = 'k' . join '', map { $_ < 0x80 && $_ != 0x5C ? chr : sprintf '\\x%02X', $_ } @bytes;
my $j = http_get('/status')->{content};
my $keys = eval { JSON::PP->new->utf8->decode($j)->{zones}{s}{keys} };
my $p = http_get('/status?format=prometheus')->{content};
(my $label = $want) =~ s/([\\"])/\\$1/g;
my $line = grep { $_ eq qq(scripting_gate_passed_total{zone="s",key="$label"} 1) }
           split /\n/, $p;
html_put('result.txt', "request: $r->{status}\n"
         . "json: " . (!$keys ? "invalid" : exists $keys->{$want} ? "key as expected"
                       : "key is " . join(',', map { encode_json([$_]) } keys %$keys)) . "\n"
         . "prometheus: " . ($line ? "line as expected" : "no such line") . "\n"
         . "prometheus lines: " . (grep({ !/^(#|scripting_gate_)/ } split /\n/, $p)
                                   ? "broken" : "whole") . "\n");
--- request
GET /result.txt
--- response_body
request: 200
json: key as expected
prometheus: line as expected
prometheus lines: whole



=== TEST 12: CR, LF and markup in a key: escaped in JSON and Prometheus
--- http_config
    scripting_gate_zone  $k  zone=s:1m;
--- config
    location /api/ {
        set $k "a\r\nb$http_x_k";
        scripting_gate zone=s limit=2;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
raw("GET /api/v2/scripts/x HTTP/1.0\r\nHost: localhost\r\n"
    . "X-K: <img src=x onerror=alert(1)>\"&\x01\r\n\r\n");
my $want = "a\r\nb<img src=x onerror=alert(1)>\"&\x01";
my $j = http_get('/status')->{content};
my $keys = eval { decode_json($j)->{zones}{s}{keys} } || {};
my $p = http_get('/status?format=prometheus')->{content};
my ($l) = grep { /^scripting_gate_passed_total\{/ } split /\n/, $p;
$l //= 'none';
$l =~ s/([\x00-\x1f])/sprintf '<%02X>', ord $1/ge;
html_put('result.txt', "json: " . (exists $keys->{$want} ? "key as expected" : "wrong") . "\n"
         . "json escapes: " . ($j =~ /"a\\r\\nb<img src=x onerror=alert\(1\)>\\"&\\u0001"/
                               ? "yes" : "no") . "\n"
         . "prometheus: $l\n");
--- request
GET /result.txt
--- response_body
json: key as expected
json escapes: yes
prometheus: scripting_gate_passed_total{zone="s",key="a<0D>\nb<img src=x onerror=alert(1)>\"&<01>"} 1



=== TEST 13: markup in a key is text on the page, in a real browser
--- http_config
    scripting_gate_zone  $http_x_k  zone=s:1m;
--- config
    location /api/ {
        scripting_gate zone=s limit=2;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
my $key = q{<img src=x onerror="document.title='pwned'">&amp;</td>'};
http_get('/api/v2/scripts/x', headers => { 'X-K' => $key });
# outside the server root, which the test harness empties between blocks
# while chromium's helpers may still write to their profile
my $profile = "/tmp/scripting-gate-chromium-060-$$";
my $url = 'http://127.0.0.1:' . ScriptingGate::Util::server_port() . '/status?format=html';
open my $fh, '-|', "chromium --headless --no-sandbox --disable-gpu --no-first-run"
    . " --disable-background-networking --disable-component-update --disable-sync"
    . " --user-data-dir=$profile --virtual-time-budget=2500 --dump-dom '$url' 2>/dev/null"
    or die "chromium: $!";
my $dom = do { local $/; <$fh> } // '';
close $fh;
system("rm -rf $profile");
my ($title) = $dom =~ m{<title>(.*?)</title>}s;
(my $text = $key) =~ s/&/&amp;/g;
$text =~ s/</&lt;/g;
$text =~ s/>/&gt;/g;
html_put('result.txt', "rows: " . (() = $dom =~ /<tr data-key=/g) . "\n"
         . "img elements: " . (() = $dom =~ /<img/g) . "\n"
         . "title: $title\n"
         . "key shown as text: " . (index($dom, ">$text<") >= 0 ? "yes" : "no") . "\n");
--- request
GET /result.txt
--- response_body
rows: 1
img elements: 0
title: scripting gate
key shown as text: yes
--- timeout: 20



=== TEST 14: a key of byte 0xFF and a key of the text \xFF are shown apart
--- http_config
    scripting_gate_zone  $http_x_k  zone=s:1m;
--- config
    location /api/ {
        scripting_gate zone=s limit=2;
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
    location = /status { scripting_gate_stats; }
--- init
package main;
raw("GET /api/v2/scripts/x HTTP/1.0\r\nHost: localhost\r\nX-K: a\xff\r\n\r\n");
raw("GET /api/v2/scripts/x HTTP/1.0\r\nHost: localhost\r\nX-K: a\\xFF\r\n\r\n")
    for 1 .. 2;
my $keys = decode_json(http_get('/status')->{content})->{zones}{s}{keys};
my $p = http_get('/status?format=prometheus')->{content};
html_put('result.txt',
    join('', map { "json: " . encode_json([$_]) . " passed $keys->{$_}{passed}\n" }
             sort keys %$keys)
    . join('', map { "$_\n" } sort grep { /^scripting_gate_passed_total/ } split /\n/, $p));
--- request
GET /result.txt
--- response_body
json: ["a\\x5CxFF"] passed 2
json: ["a\\xFF"] passed 1
scripting_gate_passed_total{zone="s",key="a\\x5CxFF"} 2
scripting_gate_passed_total{zone="s",key="a\\xFF"} 1



=== TEST 15: a JSON string holding CR or LF gives an empty variable, so it cannot split a header
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id:$vid";
        scripting_gate zone=s limit=2;
        add_header X-Gate "[$scripting_gate_key]";
        add_header X-V "[$vid]";
        proxy_pass http://mock;
    }
--- request eval
"POST /api/v2/scripts/x/export\n" . '{"versionId": "v1\r\nInjected: yes", "b": "ok\nInjected: too"}'
--- response_headers
X-Gate: [x:]
X-V: []
! Injected
--- error_log
scripting_json_var: the value at "/versionId" holds CR or LF, the variable is empty



=== TEST 16: a long key cannot get past the limit: a burst with one 5000-byte key never exceeds it at the mock, and two long keys stay apart
--- init
package main;
ScriptingGate::Mock::reset();
my $v1 = 'a' x 5000;
my $v2 = ('a' x 4999) . 'b';
my $kids = background(map { ["/api/v2/scripts/lk?scriptDataVersion=1",
                             method => 'POST',
                             body => qq({"versionId": "$v1"}),
                             headers => { 'X-Mock-Action' => '200/delay=200' }] } 1 .. 12);
my %st; $st{ $_->[0] }++ for reap($kids);
my $other = http_get('/api/v2/scripts/lk?scriptDataVersion=1', method => 'POST',
                     body => qq({"versionId": "$v2"}));
my $s = ScriptingGate::Mock::stats();
my @peaks = map { $s->{keys}{$_}{peak_in_flight} } sort grep { /^lk:/ } keys %{ $s->{keys} };
my $st = status_json('/status');
my @keys = grep { /^lk:/ } keys %{ $st->{zones}{s}{keys} };
html_put('result.txt', join('', map { "client $_ x $st{$_}\n" } sort keys %st)
         . "the other key: $other->{status}\n"
         . "upstream peak: @peaks\n"
         . "gate keys: " . scalar(@keys) . " of " . join(' ', map { length } @keys) . " bytes\n");
--- request
GET /result.txt
--- response_body
client 200 x 12
the other key: 200
upstream peak: 2
gate keys: 2 of 1024 1024 bytes
--- timeout: 20



=== TEST 17: JSON Pointer escapes: ~1 is "/", ~0 is "~", in that order
--- http_config
    scripting_gate_zone  $script_id  zone=s:1m;
    scripting_json_var   $slash  /a~1b;
    scripting_json_var   $tilde  /~0c;
    scripting_json_var   $both   /~01;
    scripting_json_var   $deep   /list/1/~1;
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        scripting_gate zone=s limit=2;
        add_header X-Vars "slash=[$slash] tilde=[$tilde] both=[$both] deep=[$deep]";
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
--- request
POST /api/v2/scripts/ptr/export
{"a/b": "slash", "a~b": "no", "a~1b": "no", "~c": "tilde", "/c": "no", "~1": "both", "/1": "no", "list": [{}, {"/": "deep", "~": "no"}]}
--- response_headers
X-Vars: slash=[slash] tilde=[tilde] both=[both] deep=[deep]



=== TEST 18: a JSON string holding LF alone gives an empty variable too
--- config
    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set $script_key "$script_id:$vid";
        scripting_gate zone=s limit=2;
        add_header X-Gate "[$scripting_gate_key]";
        add_header X-V "[$vid]";
        proxy_pass http://mock;
    }
--- request eval
"POST /api/v2/scripts/x/export\n" . '{"versionId": "v1\nInjected: yes"}'
--- response_headers
X-Gate: [x:]
X-V: []
! Injected
--- error_log
scripting_json_var: the value at "/versionId" holds CR or LF, the variable is empty
