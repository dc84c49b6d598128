# Retry and nginx's own features: every attempt is the client's own request
# through the location's content handler, so what nginx does to a proxied
# answer applies to the answer that follows a retry.  Each block's upstream
# (t/lib/ScriptingGate/Raw.pm) answers 429 first, then what the block is
# about.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use ScriptingGate::Raw;
use ScriptingGate::Util qw(html_put http_get wait_until);
use Digest::MD5 qw(md5_hex);
use IO::Socket::INET;

ScriptingGate::Raw::start();

master_on();
workers(2);
log_level('info');
no_shuffle();

our $HttpConfig = <<'_EOC_';
    scripting_gate_zone  $uri  zone=s:1m;
    proxy_cache_path     cache  keys_zone=c:1m;

    upstream raw {
        server 127.0.0.1:$TEST_NGINX_RAW_PORT;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $HttpConfig)
        unless defined $block->http_config;
});

# the whole answer as it came, until the connection closed
sub raw_get {
    my ($path, $extra) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => ScriptingGate::Util::server_port(),
                                  Timeout => 10) or die "connect: $!";
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
             . ($extra // '') . "\r\n";
    my $res = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 10;
    eval { while (sysread($s, my $buf, 65536)) { $res .= $buf } };
    alarm 0;
    close $s;
    return $res;
}

run_tests();

__DATA__

=== TEST 1: the final answer is an X-Accel-Redirect: the redirect is followed
--- config
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        proxy_pass http://raw;
    }
    location /internal/ {
        internal;
        return 200 "redirected to $uri\n";
    }
--- request
GET /t/xar1/429,xar
--- response_body
redirected to /internal/xar1



=== TEST 2: the final answer is intercepted by error_page
--- config
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        proxy_intercept_errors on;
        error_page 404 = @nf;
        proxy_pass http://raw;
    }
    location @nf {
        return 404 "intercepted\n";
    }
--- request
GET /t/ep1/429,404
--- error_code: 404
--- response_body
intercepted



=== TEST 3: the final answer goes through sub_filter
--- config
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        sub_filter abc XYZ;
        sub_filter_types text/plain;
        proxy_pass http://raw;
    }
--- request
GET /t/sf1/429,200
--- response_body chomp
0123456789XYZdefghij



=== TEST 4: a Range request gets its range of the final answer
--- config
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        proxy_force_ranges on;
        proxy_pass http://raw;
    }
--- request
GET /t/rg1/429,200
--- more_headers
Range: bytes=0-8
--- error_code: 206
--- response_headers
Content-Range: bytes 0-8/20
--- response_body chomp
012345678



=== TEST 5: proxy_cache: the retried 429 is not stored, the final answer is, and $upstream_cache_status tells
--- config
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        proxy_cache c;
        proxy_cache_valid any 1m;
        add_header X-Cache $upstream_cache_status always;
        proxy_pass http://raw;
    }
--- init
package main;
# the final 200 says no-store: had the swallowed 429 been stored, the
# second request would be answered with it from the cache
my $path = '/t/ch1/429,200ns';
my $first = http_get($path);
my $second = http_get($path);
html_put('result.txt', join '',
    "first: $first->{status} $first->{headers}{'x-cache'}\n",
    "second: $second->{status} $second->{headers}{'x-cache'}\n",
    "upstream: ", ScriptingGate::Raw::count($path), "\n");
--- request
GET /result.txt
--- response_body
first: 200 MISS
second: 200 MISS
upstream: 3



=== TEST 6: proxy_cache: an answer from the cache is not retried, a stored 200 is a HIT
--- config
    location /fill/ {
        proxy_cache c;
        proxy_cache_key $arg_k;
        proxy_cache_valid any 1m;
        proxy_pass http://raw/t/;
    }
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        proxy_cache c;
        proxy_cache_key $arg_k;
        proxy_cache_valid any 1m;
        add_header X-Cache $upstream_cache_status always;
        add_header X-Retries $scripting_retry_count always;
        proxy_pass http://raw;
    }
--- init
package main;
# the client may have its answer before nginx has renamed the cache file
my $stored = sub { my $f = ScriptingGate::Util::servroot() . '/cache/' . md5_hex($_[0]);
                   wait_until(5, sub { -f $f }) };
# a 429 in the cache, put there by a location without retry
http_get('/fill/cf1/429?k=a');
$stored->('a');
my $cached = http_get('/t/cf2/200?k=a');
my $miss = http_get('/t/cf3/429,200?k=b');
$stored->('b');
my $hit = http_get('/t/cf3/429,200?k=b');
html_put('result.txt', join '',
    "cached 429: $cached->{status} $cached->{headers}{'x-cache'}",
        " retries $cached->{headers}{'x-retries'} upstream ",
        ScriptingGate::Raw::count('/t/cf2/200'), "\n",
    "retried: $miss->{status} $miss->{headers}{'x-cache'}\n",
    "again: $hit->{status} $hit->{headers}{'x-cache'} $hit->{content}\n",
    "upstream: ", ScriptingGate::Raw::count('/t/cf3/429,200'), "\n");
--- request
GET /result.txt
--- response_body
cached 429: 429 HIT retries 0 upstream 0
retried: 200 MISS
again: 200 HIT 0123456789abcdefghij
upstream: 2



=== TEST 7: a final answer cut short reaches the client cut short, never as a whole answer
--- config
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        proxy_pass http://raw;
    }
    location /c/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        proxy_http_version 1.1;
        proxy_pass http://raw/t/;
    }
--- init
package main;
my $cl = raw_get('/t/cut1/429,cut');
my ($len) = $cl =~ /^Content-Length: (\d+)/mi;
my (undef, $body) = split /\r\n\r\n/, $cl, 2;
my $ch = raw_get('/c/cut2/429,chunkcut');
html_put('result.txt', join '',
    "length: status ", ($cl =~ m{^HTTP/1.1 (\d+)} ? $1 : 'none'),
        ", says $len, got ", length($body // ''), "\n",
    "chunked: status ", ($ch =~ m{^HTTP/1.1 (\d+)} ? $1 : 'none'),
        ", last chunk ", ($ch =~ /\r\n0\r\n\r\n$/ ? "sent" : "not sent"), "\n",
    "upstream: ", ScriptingGate::Raw::count('/t/cut1/429,cut'), " ",
        ScriptingGate::Raw::count('/t/cut2/429,chunkcut'), "\n");
--- request
GET /result.txt
--- response_body
length: status 200, says 1000, got 10
chunked: status 200, last chunk not sent
upstream: 2 2



=== TEST 8: a WebSocket upgrade in a retry location works (101 is not retried)
--- config
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_pass http://raw;
    }
--- init
package main;
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                              PeerPort => ScriptingGate::Util::server_port(),
                              Timeout => 10) or die "connect: $!";
print $s "GET /t/ws1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
         . "Connection: Upgrade\r\n\r\n";
my $head = '';
local $SIG{ALRM} = sub { die "timeout\n" };
alarm 10;
eval {
    while ($head !~ /\r\n\r\n/) { sysread($s, $head, 4096, length $head) or last }
    syswrite($s, "ping");
    sysread($s, my $echo, 4096);
    $head .= "echo: " . ($echo // '') . "\n";
};
alarm 0;
close $s;
my ($status) = $head =~ m{^HTTP/1.1 (\d+)};
my ($echo) = $head =~ /echo: (.*)$/;
html_put('result.txt', "status: $status\necho: $echo\n");
--- request
GET /result.txt
--- response_body
status: 101
echo: ping



=== TEST 9: mirror fires once for the client's request, whatever the retries
--- config
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        mirror /mirror;
        proxy_pass http://raw;
    }
    location = /mirror {
        internal;
        proxy_pass http://raw/t/mirrored/200;
    }
--- init
package main;
my $res = http_get('/t/mi1/429,429,200');
# the mirror's answer may come after the client's
my $n = 0;
for (1 .. 100) { $n = ScriptingGate::Raw::count('/t/mirrored/200'); last if $n; select(undef, undef, undef, 0.02) }
html_put('result.txt', "client: $res->{status}\n"
         . "upstream: " . ScriptingGate::Raw::count('/t/mi1/429,429,200') . "\n"
         . "mirrored: $n\n");
--- request
GET /result.txt
--- response_body
client: 200
upstream: 3
mirrored: 1



=== TEST 10: another content handler than the proxy's: scgi_pass is retried the same way
--- config
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        add_header X-Upstream $upstream_status always;
        scgi_param REQUEST_URI $request_uri;
        scgi_pass 127.0.0.1:$TEST_NGINX_RAW_PORT;
    }
--- request
GET /t/scgi1/429,200
--- response_headers
X-Upstream: 429, 200
--- response_body chomp
0123456789abcdefghij



=== TEST 11: after a reload, a gated location with and one without retries both answer (the modules' hooks are chained once per configuration)
--- config
    location /t/ {
        scripting_gate zone=s limit=10;
        scripting_retry on=429 attempts=3 base=10ms cap=10ms;
        proxy_pass http://raw;
    }
    location /g/ {
        scripting_gate zone=s limit=10;
        proxy_pass http://raw/t/;
    }
    location = /pid {
        return 200 $pid;
    }
--- init
package main;
my %old = map { $_ => 1 } ScriptingGate::Util::worker_pids();
kill 'HUP', ScriptingGate::Util::master_pid();
# the old workers close their listeners once the new ones are there
my $new = wait_until(10, sub {
    my $res = http_get('/pid');
    return $res->{status} == 200 && !$old{ $res->{content} };
});
my $retried = http_get('/t/reload1/429,200', timeout => 3);
my $gated = http_get('/g/reload2/200', timeout => 3);
html_put('result.txt', "new workers: " . ($new ? "yes" : "no") . "\n"
         . "retried: $retried->{status}, upstream "
         . ScriptingGate::Raw::count('/t/reload1/429,200') . "\n"
         . "gated: $gated->{status}\n");
--- request
GET /result.txt
--- response_body
new workers: yes
retried: 200, upstream 2
gated: 200
