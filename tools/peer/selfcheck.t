#!/usr/bin/perl

# tools/peer.sh's check that its injection works: a location holding
# proxy_pass, to an upstream that answers 429, is tried three times with
# the module (scripting_retry on=429 attempts=3 injected), once without.
# It runs among nginx-tests' files (its Test::Nginx), under its own name.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Nginx;

my $t = Test::Nginx->new()->has(qw/http proxy rewrite/)->plan(1);

$t->write_file_expand('nginx.conf', <<'EOF2');

%%TEST_GLOBALS%%

daemon off;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:8080;
        server_name  localhost;

        location / {
            proxy_pass http://127.0.0.1:8081;
            add_header X-Attempts $upstream_status always;
        }
    }

    server {
        listen       127.0.0.1:8081;
        server_name  localhost;

        location / {
            return 429;
        }
    }
}

EOF2

$t->run();

my $expect = $ENV{PEER_INJECT} ? '429, 429, 429' : '429';
like(http_get('/'), qr/X-Attempts: \Q$expect\E\x0d/, "attempts: $expect");
