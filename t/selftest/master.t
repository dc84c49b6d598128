# The runner with a master process and two workers.

use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
repeat_each(3);
run_tests();

__DATA__

=== TEST 1: a worker answers
--- config
    location = /t { return 200 "worker\n"; }
--- request
GET /t
--- response_body
worker
