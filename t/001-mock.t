# The mock Scripting API itself, through a plain proxy_pass: Genesys' 429
# byte for byte, its limits, its fault injection and its accounting.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get background reap);

ScriptingGate::Mock::start(limit => 2, rate => 5, delay => 0);

no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', <<'_EOC_') unless defined $block->config;
    location /api/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
    }
_EOC_
});

sub mock_get {
    my ($path, %h) = @_;
    return http_get("http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}$path",
                    headers => \%h);
}

run_tests();

__DATA__

=== TEST 1: a script, with its version from the query
--- init
package main;
ScriptingGate::Mock::reset();
--- request
GET /api/v2/scripts/abc?scriptDataVersion=3
--- response_headers_like
Content-Type: ^application/json$
ININ-Correlation-Id: ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$
--- response_body chomp
{"id":"abc","name":"Script abc","versionId":"3"}



=== TEST 2: the Genesys 429, headers and body
--- more_headers
X-Mock-Action: 429/ra=42
--- request
GET /api/v2/scripts/abc
--- error_code: 429
--- response_headers
Retry-After: 42
Cache-Control: no-cache, no-store, must-revalidate
Content-Type: application/json
--- response_body_like chomp
^\{"message":"Rate limit exceeded the maximum\. Retry the request in \[42\] seconds","code":"too\.many\.requests\.retry\.after","status":429,"contextId":"([-0-9a-f]{36})","details":\[\],"errors":\[\]\}$



=== TEST 3: the contextId is the ININ-Correlation-Id, byte for byte
--- init
package main;
my $res = mock_get('/api/v2/scripts/abc', 'X-Mock-Action' => '429/ra=7');
my $id = $res->{headers}{'inin-correlation-id'};
my $want = '{"message":"Rate limit exceeded the maximum. Retry the request in [7] seconds",'
         . '"code":"too.many.requests.retry.after","status":429,"contextId":"' . $id
         . '","details":[],"errors":[]}';
html_put('result.txt', ($res->{content} eq $want ? "same" : "different: $res->{content}") . "\n");
--- request
GET /result.txt
--- config
--- response_body
same



=== TEST 4: the older 429 has no Retry-After
--- more_headers
X-Mock-Action: 429/ra=none
--- request
GET /api/v2/scripts/abc
--- error_code: 429
--- response_headers
! Retry-After
--- response_body_like: ^\{"message":"Rate limit exceeded the maximum","code":"too\.many\.requests","status":429,



=== TEST 5: Retry-After as an HTTP-date
--- more_headers
X-Mock-Action: 429/date=30
--- request
GET /api/v2/scripts/abc
--- error_code: 429
--- response_headers_like
Retry-After: ^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$



=== TEST 6: 503, 504 and 502 in Genesys' shape
--- more_headers
X-Mock-Action: 504
--- request
GET /api/v2/scripts/abc
--- error_code: 504
--- response_body_like: ^\{"message":"The request timed out","code":"request\.timeout","status":504,"contextId":"[-0-9a-f]{36}","details":\[\],"errors":\[\]\}$



=== TEST 7: the body comes back byte for byte, and export answers a URL
--- request
POST /api/v2/scripts/abc/export
{"fileName":"f.json","versionId":"v9"}
--- more_headers
X-Mock-Echo: 1
--- response_body chomp
{"fileName":"f.json","versionId":"v9"}



=== TEST 8: a large answer of an exact size
--- more_headers
X-Mock-Size: 100000
--- request
GET /api/v2/scripts/abc
--- response_body eval
substr('0123456789abcdef' x 6250, 0, 100000)



=== TEST 9: a connection reset gives no answer at all
--- config
    location /api/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        proxy_next_upstream off;
    }
--- more_headers
X-Mock-Action: reset
--- request
GET /api/v2/scripts/abc
--- error_code: 502
--- error_log eval
qr/upstream prematurely closed connection|recv\(\) failed|reset by peer/



=== TEST 10: the concurrency limit per version answers 429 with the time to a free slot
--- config
--- init
package main;
ScriptingGate::Mock::reset();
my $kids = background(map { ["http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}/api/v2/scripts/lim?scriptDataVersion=1",
                             headers => { 'X-Mock-Action' => '200/delay=1500' }] } 1 .. 2);
select(undef, undef, undef, 0.2);
my $res = mock_get('/api/v2/scripts/lim?scriptDataVersion=1');
my $other = mock_get('/api/v2/scripts/lim?scriptDataVersion=2');
my @r = reap($kids);
my $k = ScriptingGate::Mock::key_stats('lim:1:');
html_put('result.txt', "third: $res->{status} Retry-After $res->{headers}{'retry-after'}\n"
         . "other version: $other->{status}\n"
         . "first two: $r[0][0] $r[1][0]\n"
         . "accounting: requests=$k->{requests} peak=$k->{peak_in_flight} 429=$k->{status}{429}\n");
--- request
GET /result.txt
--- response_body
third: 429 Retry-After 2
other version: 200
first two: 200 200
accounting: requests=3 peak=2 429=1
--- timeout: 10



=== TEST 11: the token bucket per bearer token (5 a minute here)
--- config
--- init
package main;
ScriptingGate::Mock::reset();
my @st = map { mock_get("/api/v2/scripts/t$_", Authorization => 'Bearer tok-a')->{status} } 1 .. 6;
my $b = mock_get('/api/v2/scripts/t9', Authorization => 'Bearer tok-b')->{status};
my $last = mock_get('/api/v2/scripts/t9', Authorization => 'Bearer tok-a');
html_put('result.txt', "token a: @st\ntoken b: $b\nwait: $last->{headers}{'retry-after'}\n");
--- request
GET /result.txt
--- response_body
token a: 200 200 200 200 200 429
token b: 200
wait: 12



=== TEST 12: the accounting: per key, requests, 429s, bodies and arrivals
--- config
--- init
package main;
ScriptingGate::Mock::reset();
ScriptingGate::Mock::plan('acc::v1', '429', '200');
for my $i (1 .. 3) {
    http_get("http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}/api/v2/scripts/acc/export",
             method => 'POST', body => '{"versionId":"v1"}');
}
my $k = ScriptingGate::Mock::key_stats('acc::v1');
html_put('result.txt', "requests=$k->{requests} 200=$k->{status}{200} 429=$k->{status}{429}"
         . " distinct_bodies=$k->{distinct_bodies} last_body_len=$k->{last_body_len}"
         . " arrivals=" . scalar(@{ $k->{arrivals_ms} }) . "\n");
--- request
GET /result.txt
--- response_body
requests=3 200=2 429=1 distinct_bodies=1 last_body_len=18 arrivals=3



=== TEST 13: the login host's client credentials grant: a token for any client; no credentials, or another grant, refused in OAuth's shape; tokens counted
--- config
--- init
package main;
ScriptingGate::Mock::reset();
my $url = "http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}/oauth/token";
my %form = ('Content-Type' => 'application/x-www-form-urlencoded');
my $ok = http_get($url, method => 'POST', body => 'grant_type=client_credentials',
                  headers => { %form, 'Authorization' => 'Basic c2RrOnNlY3JldA==' });
my $anon = http_get($url, method => 'POST', body => 'grant_type=client_credentials',
                    headers => \%form);
my $pw = http_get($url, method => 'POST', body => 'grant_type=password',
                  headers => { %form, 'Authorization' => 'Basic c2RrOnNlY3JldA==' });
my $get = http_get($url);
my $s = ScriptingGate::Mock::stats();
(my $body = $ok->{content}) =~ s/"access_token":"[0-9a-f]{64}"/"access_token":"<64 hex>"/;
html_put('result.txt', "token: $ok->{status} $ok->{headers}{'content-type'} $body\n"
    . "no credentials: $anon->{status} $anon->{content}\n"
    . "password grant: $pw->{status} $pw->{content}\n"
    . "GET: $get->{status}\n"
    . "tokens=$s->{total}{tokens} requests=$s->{total}{requests}\n");
--- request
GET /result.txt
--- response_body
token: 200 application/json {"access_token":"<64 hex>","token_type":"bearer","expires_in":86400}
no credentials: 401 {"error":"invalid_client","description":"client authentication failed","error_description":"client authentication failed"}
password grant: 400 {"error":"unsupported_grant_type","description":"grant type not supported","error_description":"grant type not supported"}
GET: 404
tokens=1 requests=0



=== TEST 14: the request's headers come back as JSON, in order, repeats kept (X-Mock-Echo-Headers: 1, or the action "headers")
--- config
--- init
package main;
use JSON::PP qw(decode_json);
my $show = sub {
    my ($res) = @_;
    my $all = eval { decode_json($res->{content}) };
    $all = [] if ref $all ne 'ARRAY';
    return "$res->{status} $res->{headers}{'content-type'} "
           . join(' ', map { "$_->[0]=$_->[1]" }
                       grep { $_->[0] =~ /^X-[AB]$/ } @$all) . "\n";
};
my $one = mock_get('/api/v2/scripts/abc', 'X-Mock-Echo-Headers' => 1,
                   'X-A' => ['1', '2']);
my $two = mock_get('/api/v2/scripts/abc', 'X-Mock-Action' => '200/headers',
                   'X-B' => 'b');
html_put('result.txt', $show->($one) . $show->($two));
--- request
GET /result.txt
--- response_body
200 application/json X-A=1 X-A=2
200 application/json X-B=b
