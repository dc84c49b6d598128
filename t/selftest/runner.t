# The runner's own checks, with plain nginx features only.

use Test::Nginx::Socket 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a body and headers
--- config
    location = /t {
        add_header X-Foo "foo[$http_x_bar]";
        return 200 "hello\n";
    }
--- request
GET /t
--- more_headers
X-Bar: baz
--- response_headers
X-Foo: foo[baz]
! X-Absent
--- response_body
hello
--- no_error_log
[error]



=== TEST 2: another status
--- config
    location = /t { return 404; }
--- request
GET /t
--- error_code: 404
--- response_body_like: 404 Not Found



=== TEST 3: the error log of the request
--- config
    location = /t { return 200 "ok"; }
--- request
GET /nothing-here
--- error_code: 404
--- error_log eval
[qr/No such file or directory/, 'open() "']



=== TEST 4: a bad directive stops nginx
--- config
    location = /t { no_such_directive on; }
--- must_die
--- error_log
unknown directive "no_such_directive"



=== TEST 5: POST body reaches a proxied location
--- config
    location = /t {
        client_body_in_single_buffer on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location = /echo {
        return 200 "len=$content_length";
    }
--- request
POST /t
hello world
--- response_body chomp
len=11
