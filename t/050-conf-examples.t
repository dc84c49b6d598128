# Every nginx configuration of conf-examples/ is started, as it is but for
# its addresses, and answers through the gate (grafana-dashboard.json is
# t/042-stats-prometheus.t's).  genesys-cloud.conf talks TLS, with SNI and
# verification, to a stand-in for the regional API and login hosts: an
# nginx server of the block with a certificate made here for
# api.mypurecloud.com and login.mypurecloud.com.  two-node.conf runs as two
# nodes, against a redis-server started by the test, with a password.

use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use Cwd qw(getcwd);
use JSON::PP qw(decode_json);
use MIME::Base64 qw(encode_base64);
use ScriptingGate::Mock;
use ScriptingGate::Redis;
use ScriptingGate::Util qw(html_put http_get servroot status_json wait_until);

ScriptingGate::Mock::start(delay => 0);

$ENV{TEST_NGINX_TLS_PORT} ||= 19443;

# a certificate for the stand-in of the API host, outside the server root
# (which is made anew for each block)
my $tls = "/tmp/scripting-gate-tls-$$";
$ENV{TEST_NGINX_TLS_DIR} = $tls;
mkdir $tls;
system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=api.mypurecloud.com "
       . "-addext subjectAltName=DNS:api.mypurecloud.com,DNS:login.mypurecloud.com "
       . "-keyout $tls/api.key -out $tls/api.crt 2>/dev/null") == 0
    or die "openssl failed\n";
END { system("rm -rf $tls") if $tls }
$ENV{TEST_NGINX_EXAMPLE_PORT} ||= 19080;
$ENV{TEST_NGINX_EXAMPLE_PORT2} ||= 19081;
$ENV{TEST_NGINX_EXAMPLE_PORT3} ||= 19082;

no_shuffle();

# starts an example from its own prefix; returns an error or undef
sub start_example {
    my ($name, %subst) = @_;
    return start_example_as(undef, $name, %subst);
}

# the same from a prefix of its own, example_prefix($tag): an example run
# as several nodes
sub start_example_as {
    my ($tag, $name, %subst) = @_;
    my $top = getcwd();
    my $prefix = example_prefix($tag);
    system("rm -rf $prefix");
    system("mkdir -p $prefix");
    mkdir "$prefix/$_" for qw(conf logs modules cache);
    my $so = (split ' ', $ENV{TEST_NGINX_LOAD_MODULES} || '')[0]
             || "$top/build/nginx/ngx_http_scripting_gate_module.so";
    symlink $so, "$prefix/modules/ngx_http_scripting_gate_module.so";

    open my $in, '<', "$top/conf-examples/$name" or return "$name: $!";
    my $conf = do { local $/; <$in> };
    close $in;
    for my $from (keys %subst) {
        $conf =~ s/\Q$from\E/$subst{$from}/g
            or return "$name: \"$from\" not found";
    }
    $conf =~ s/^worker_processes .*$/worker_processes 2;/m;
    open my $out, '>', "$prefix/conf/nginx.conf" or return $!;
    print $out $conf;
    close $out;

    my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $err = `$nginx -p $prefix/ -c conf/nginx.conf 2>&1`;
    return $? ? $err : undef;
}

# an async job through the example: "202, then <status> <body>"; the job's
# result is fetched under $prefix (the SDKs' API path), when given
sub async_job {
    my ($base, $path, $body, $prefix) = @_;
    my $res = http_get("$base$path", method => defined $body ? 'POST' : 'GET',
                       body => $body,
                       headers => { 'Prefer' => 'respond-async' });
    my $loc = $res->{headers}{location} or return "$res->{status}, no job";
    $prefix //= '';
    my $r;
    for (1 .. 500) {
        $r = http_get("$base$prefix$loc/result");
        last if $r->{status} != 202;
        select(undef, undef, undef, 0.01);
    }
    return "$res->{status}, then $r->{status} $r->{content}";
}

# outside the server root, which the runner alone manages
sub example_prefix {
    my ($tag) = @_;
    return getcwd() . "/build/test-artifacts/example" . (defined $tag ? "-$tag" : '');
}

sub stop_example {
    my ($tag) = @_;
    my $prefix = example_prefix($tag);
    my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    system("$nginx -p $prefix/ -c conf/nginx.conf -s stop 2>/dev/null");
    # the master goes with its workers; the runner reaps it
    for (1 .. 500) {
        last unless -e "$prefix/logs/nginx.pid";
        select(undef, undef, undef, 0.01);
    }
}

run_tests();

__DATA__

=== TEST 1: demo.conf starts and gates the mock
--- config
--- init
package main;
my $port = $ENV{TEST_NGINX_EXAMPLE_PORT};
my $err = start_example('demo.conf',
    '127.0.0.1:8080' => "127.0.0.1:$port",
    '127.0.0.1:9001' => "127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}");
my $res = $err ? {} : http_get("http://127.0.0.1:$port/api/v2/scripts/demo?scriptDataVersion=2");
my $st = $err ? {} : http_get("http://127.0.0.1:$port/scripting-gate/status");
my $job = $err ? "" : async_job("http://127.0.0.1:$port", '/api/v2/scripts/demo?scriptDataVersion=3');
stop_example();
html_put('result.txt', ($err ? "error: $err" : "started\n")
    . "script: " . ($res->{status} // '') . " " . ($res->{content} // '') . "\n"
    . "status: " . (($st->{content} // '') =~ /"demo:2:":\{"passed":1,/ ? "counted" : "not counted") . "\n"
    . "async: $job\n");
--- request
GET /result.txt
--- response_body
started
script: 200 {"id":"demo","name":"Script demo","versionId":"2"}
status: counted
async: 202, then 200 {"id":"demo","name":"Script demo","versionId":"3"}
--- timeout: 10



=== TEST 2: genesys-cloud.conf starts, verifies the upstream's certificate and gates it
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
        server_name api.mypurecloud.com login.mypurecloud.com;
        ssl_certificate     $TEST_NGINX_TLS_DIR/api.crt;
        ssl_certificate_key $TEST_NGINX_TLS_DIR/api.key;
        location / {
            add_header X-SNI $ssl_server_name;
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        }
    }
--- config
--- main_config
--- init
package main;
my $port = $ENV{TEST_NGINX_EXAMPLE_PORT};
my $err = start_example('genesys-cloud.conf',
    'api.mypurecloud.com:443' => "127.0.0.1:$ENV{TEST_NGINX_TLS_PORT}",
    'login.mypurecloud.com:443' => "127.0.0.1:$ENV{TEST_NGINX_TLS_PORT}",
    '/etc/ssl/certs/ca-certificates.crt' => "$ENV{TEST_NGINX_TLS_DIR}/api.crt",
    'listen  8080;' => "listen  127.0.0.1:$port;",
    '127.0.0.1:8081' => "127.0.0.1:$ENV{TEST_NGINX_EXAMPLE_PORT2}",
    '127.0.0.1:8082' => "127.0.0.1:$ENV{TEST_NGINX_EXAMPLE_PORT3}");
ScriptingGate::Mock::reset();
my $res = $err ? {} : http_get("http://127.0.0.1:$port/api/v2/scripts/gen/export",
                               method => 'POST', body => '{"versionId":"v5"}');
my $job = $err ? "" : async_job("http://127.0.0.1:$port", '/api/v2/scripts/gen/export',
                                '{"versionId":"v6"}');
# a miss, then a hit: the hit reaches neither the gate nor the upstream
my @pub = map { $err ? {} : http_get("http://127.0.0.1:$port/api/v2/scripts/published/gen?scriptDataVersion=1") } 1 .. 2;
my $st = $err ? {} : http_get("http://127.0.0.1:$port/scripting-gate/status");
my $k = ScriptingGate::Mock::key_stats('gen:1:');
stop_example();
my ($passed) = ($st->{content} // '') =~ /"gen:1:published":\{"passed":(\d+)/;
html_put('result.txt', ($err ? "error: $err" : "started\n")
    . "export: " . ($res->{status} // '') . " " . ($res->{content} // '') . "\n"
    . "published: " . join(' ', map { ($_->{status} // '') . " sni=" . ($_->{headers}{'x-sni'} // '') } @pub) . "\n"
    . "published through the gate: " . ($passed // 'none') . ", upstream: " . ($k->{requests} // 0) . "\n"
    . "keys: " . join(' ', sort (($st->{content} // '') =~ /"([^"]+:[^"]*:[^"]*)":\{"passed"/g)) . "\n"
    . "async: $job\n");
--- request
GET /result.txt
--- response_body
started
export: 200 {"url":"https://example.invalid/export/gen.json"}
published: 200 sni=api.mypurecloud.com 200 sni=api.mypurecloud.com
published through the gate: 1, upstream: 1
keys: gen:1:published gen::v5 gen::v6
async: 202, then 200 {"url":"https://example.invalid/export/gen.json"}
--- timeout: 10



=== TEST 3: genesys-cloud.conf in the SDKs' gateway mode: the login goes to the login host ungated, API calls and async jobs under the API path through the gate
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
        server_name api.mypurecloud.com login.mypurecloud.com;
        ssl_certificate     $TEST_NGINX_TLS_DIR/api.crt;
        ssl_certificate_key $TEST_NGINX_TLS_DIR/api.key;
        location / {
            add_header X-SNI $ssl_server_name;
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        }
    }
--- config
--- main_config
--- init
package main;
my $port = $ENV{TEST_NGINX_EXAMPLE_PORT};
my $err = start_example('genesys-cloud.conf',
    'api.mypurecloud.com:443' => "127.0.0.1:$ENV{TEST_NGINX_TLS_PORT}",
    'login.mypurecloud.com:443' => "127.0.0.1:$ENV{TEST_NGINX_TLS_PORT}",
    '/etc/ssl/certs/ca-certificates.crt' => "$ENV{TEST_NGINX_TLS_DIR}/api.crt",
    'listen  8080;' => "listen  127.0.0.1:$port;",
    '127.0.0.1:8081' => "127.0.0.1:$ENV{TEST_NGINX_EXAMPLE_PORT2}",
    '127.0.0.1:8082' => "127.0.0.1:$ENV{TEST_NGINX_EXAMPLE_PORT3}");
ScriptingGate::Mock::reset();
my $base = "http://127.0.0.1:$port";
# what Genesys' SDKs send with path_params_login=login and
# path_params_api=platform (t/071-sdk.t runs the JavaScript one)
my $login = $err ? {} : http_get("$base/login/oauth/token", method => 'POST',
    headers => { 'Authorization' => 'Basic ' . encode_base64('sdk-client:sdk-secret', ''),
                 'Content-Type' => 'application/x-www-form-urlencoded',
                 'Accept' => 'application/json, text/plain, */*' },
    body => 'grant_type=client_credentials');
my $tok = eval { decode_json($login->{content}) } || {};
my $api = $err ? {} : http_get("$base/platform/api/v2/scripts/sdk/pages?scriptDataVersion=4",
    headers => { 'Authorization' => "Bearer " . ($tok->{access_token} // ''),
                 'Content-Type' => 'application/json',
                 'Accept' => 'application/json' });
my $job = $err ? "" : async_job($base, '/platform/api/v2/scripts/sdk/export',
                                '{"versionId":"v5"}', '/platform');
my $st = $err ? {} : http_get("$base/scripting-gate/status");
my $m = ScriptingGate::Mock::stats();
stop_example();
my @log;
if (open my $fh, '<', example_prefix() . "/logs/access.log") {
    while (my $l = <$fh>) {
        push @log, "$1 $2 gate=$3" if $l =~ /"(\S+) (\S+) [^"]*" (?:\d+) .* gate=(\S*) /;
    }
}
html_put('result.txt', ($err ? "error: $err" : "started\n")
    . "login: " . ($login->{status} // '') . " sni=" . ($login->{headers}{'x-sni'} // '')
    . " token_type=" . ($tok->{token_type} // '') . " expires_in=" . ($tok->{expires_in} // '')
    . " token=" . (($tok->{access_token} // '') =~ /^[0-9a-f]{64}$/ ? 'yes' : 'no') . "\n"
    . "api: " . ($api->{status} // '') . " sni=" . ($api->{headers}{'x-sni'} // '')
    . " " . ($api->{content} // '') . "\n"
    . "async: $job\n"
    . "upstream: tokens=" . ($m->{total}{tokens} // 0) . " "
    . join(' ', map { "$_=$m->{keys}{$_}{requests}" } sort keys %{ $m->{keys} }) . "\n"
    . "gate keys: " . join(' ', sort (($st->{content} // '') =~ /"([^"]+:[^"]*:[^"]*)":\{"passed"/g)) . "\n"
    . join('', map { "log: $_\n" } grep { m{/oauth/token|/pages} } @log));
--- request
GET /result.txt
--- response_body
started
login: 200 sni=login.mypurecloud.com token_type=bearer expires_in=86400 token=yes
api: 200 sni=api.mypurecloud.com {"id":"sdk","name":"Script sdk","versionId":"4"}
async: 202, then 200 {"url":"https://example.invalid/export/sdk.json"}
upstream: tokens=1 sdk:4:=1 sdk::v5=1
gate keys: sdk:4: sdk::v5
log: POST /login/oauth/token gate=-
log: GET /platform/api/v2/scripts/sdk/pages?scriptDataVersion=4 gate=PASSED
--- timeout: 10



=== TEST 4: two-node.conf as two nodes sharing one Redis (with a password, database 2): a burst split across them has at most the limit in flight upstream
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
        server_name api.mypurecloud.com;
        ssl_certificate     $TEST_NGINX_TLS_DIR/api.crt;
        ssl_certificate_key $TEST_NGINX_TLS_DIR/api.key;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        }
    }
--- config
--- main_config
--- init
package main;
my $pw = 'two-node-secret';
ScriptingGate::Redis::start(password => $pw);
ScriptingGate::Redis::cmd('FLUSHALL');
my @ports = ($ENV{TEST_NGINX_EXAMPLE_PORT}, $ENV{TEST_NGINX_EXAMPLE_PORT2});
my @err;
for my $i (0, 1) {
    my $e = start_example_as("node$i", 'two-node.conf',
        'api.mypurecloud.com:443' => "127.0.0.1:$ENV{TEST_NGINX_TLS_PORT}",
        '/etc/ssl/certs/ca-certificates.crt' => "$ENV{TEST_NGINX_TLS_DIR}/api.crt",
        'listen  8080;' => "listen  127.0.0.1:$ports[$i];",
        'redis://:CHANGE-ME@10.0.0.5:6379/2'
            => "redis://:$pw\@127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}/2");
    push @err, "node$i: $e" if $e;
}
my @status = map { "http://127.0.0.1:$_/scripting-gate/status" } @ports;
my $redis = sub { ((status_json($_[0]) || {})->{zones}{scripts}{redis} || {})->{state} // 'none' };
my $up = @err ? 0 : grep { my $u = $_; wait_until(10, sub { $redis->($u) eq 'up' }) } @status;
ScriptingGate::Mock::reset();
# 40 at once, half through each node, 200 ms each at the upstream
my %st = @err ? () : ScriptingGate::Mock::burst(n => 40, timeout => 30,
    headers => { 'X-Mock-Action' => '200/delay=200' },
    paths => [map { "http://127.0.0.1:$ports[$_ % 2]/api/v2/scripts/two?scriptDataVersion=1" } 0 .. 39]);
my $k = ScriptingGate::Mock::key_stats('two:1:');
my @keys = map { ScriptingGate::Redis::cmd('SELECT', $_);
                 scalar ScriptingGate::Redis::keys_like('sg:{scripts:*') } (2, 0);
my @kst = map { ((status_json($_) || {})->{zones}{scripts}{keys} || {})->{'two:1:'} || {} } @status;
stop_example("node$_") for 0, 1;
my @logs;
for my $i (0, 1) {
    open my $fh, '<', example_prefix("node$i") . "/logs/error.log" or next;
    push @logs, map { "node$i: $_" } grep { /\[(?:alert|emerg|crit)\]|scripting_gate_redis/ } <$fh>;
}
html_put('result.txt', join '', (map { "error: $_" } @err),
    "redis up on nodes: $up\n",
    "burst: ", join(' ', map { "$_ x $st{$_}" } sort keys %st), "\n",
    "upstream: requests=$k->{requests} peak=$k->{peak_in_flight}\n",
    "keys of zone scripts in database 2: ", ($keys[0] ? "yes" : "none"),
    ", in database 0: ", ($keys[1] ? "yes" : "none"), "\n",
    "the nodes' own figures: ", join(' ', map { "passed=" . ($_->{passed} // 'none')
        . (defined $_->{cluster_active} ? " with the cluster's" : "") } @kst), "\n",
    @logs);
--- request
GET /result.txt
--- response_body
redis up on nodes: 2
burst: 200 x 40
upstream: requests=40 peak=10
keys of zone scripts in database 2: yes, in database 0: none
the nodes' own figures: passed=20 with the cluster's passed=20 with the cluster's
--- timeout: 40
