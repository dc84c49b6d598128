# The runner's own checks, with plain nginx features and the standard
# sections only: this file passes under the real Test::Nginx as well.

use Test::Nginx::Socket 'no_plan';

# blocks without a request ask for /t
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('request', "GET /t\n") unless defined $block->request;
});

run_tests();

__DATA__

=== TEST 1: a body, the generated defaults, headers present and absent
--- config
    location = /t {
        add_header X-Foo "foo[$http_x_bar]";
        return 200 "hello\n";
    }
--- more_headers
X-Bar: baz
--- response_headers
X-Foo: foo[baz]
Content-Type: text/plain
! X-Absent
--- response_body
hello
--- no_error_log
[error]
[warn]



=== TEST 2: a status other than 200, and a body regex
--- config
    location = /t { return 404; }
--- error_code: 404
--- response_body_like: <center><h1>404 Not Found</h1></center>



=== TEST 3: error_log lines, as strings and as eval'ed regexes
--- config
    location = /t { return 200 "ok"; }
--- request
GET /nothing-here
--- error_code: 404
--- error_log
No such file or directory
/html/nothing-here" failed
--- no_error_log eval
[qr/\[(?:alert|crit)\]/, "nothing-there"]



=== TEST 4: a bad directive stops nginx
--- config
    location = /t { no_such_directive on; }
--- must_die
--- error_log
[emerg]
unknown directive "no_such_directive"



=== TEST 5: must_die with the exit code
--- config
    location = /t { return 1000; }
--- must_die: 1
--- error_log eval
qr/\[emerg\] .*invalid return code "1000"/



=== TEST 6: a POST body reaches the upstream, trimmed, with its length
--- http_config
    upstream self {
        server 127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }
--- config
    location = /t {
        client_body_in_single_buffer on;
        proxy_set_header X-Body $request_body;
        proxy_pass http://self/echo;
    }
    location = /echo {
        return 200 "len=$content_length body=[$http_x_body]\n";
    }
--- request
POST /t
hello world

--- response_body
len=11 body=[hello world]



=== TEST 7: request and response_body by eval, error_code by eval
--- config
    location = /t {
        client_body_in_single_buffer on;
        proxy_set_header X-Body $request_body;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location = /echo {
        return 201 "$content_length $http_x_body";
    }
--- request eval
"POST /t\n" . ("ab" x 10)
--- error_code eval
200 + 1
--- response_body eval
"20 " . ("ab" x 10)



=== TEST 8: a request header through a variable, and a chunked body
--- config
    location = /t {
        sub_filter_types text/plain;
        sub_filter 'x-foo' 'X-FOO';
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location = /echo {
        return 200 "x-foo=$http_x_foo\n";
    }
--- more_headers
X-Foo: bar
--- response_headers
Transfer-Encoding: chunked
! Content-Length
--- response_body
X-FOO=bar



=== TEST 9: init runs once nginx runs (server root ready), before the request
--- config
    location = /t { return 200; }
--- init
# evaluated in package Test::Nginx::Util: its html_dir() needs no prefix
open my $fh, '>', html_dir() . '/init.txt' or die $!;
print $fh "written by init\n";
close $fh;
--- request
GET /init.txt
--- response_body
written by init



=== TEST 10: the error log window opens with nginx: what init makes it log is in
--- config
    location = /t { return 200 "t\n"; }
--- init
require IO::Socket::INET;
my $s = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}")
    or die "connect: $!";
print $s "GET /from-init HTTP/1.0\r\n\r\n";
1 while <$s>;
--- response_body
t
--- error_log
/html/from-init" failed



=== TEST 11: main_config, response_headers_like, wait and timeout
--- main_config
timer_resolution 50ms;
--- config
    location = /t { return 200 "t\n"; }
--- response_headers_like
Server: nginx/[\d.]+
Content-Length: \d
--- response_body
t
--- wait: 0.05
--- timeout: 1.5



=== TEST 12: SKIP leaves a block out
--- config
    location = /t { return 500; }
--- response_body
never checked
--- SKIP
