# The runner with a master process and two workers, each block's request
# repeated against the same nginx.

use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
worker_connections(128);
log_level('info');
repeat_each(3);
run_tests();

__DATA__

=== TEST 1: a worker answers, each time
--- config
    location = /t { return 200 "worker\n"; }
--- request
GET /t
--- response_body
worker
--- no_error_log
[error]



=== TEST 2: two workers under the master of the pid file
--- config
    location = /t { return 200 "t\n"; }
--- init
# Test::Nginx::Util's get_pid_from_pidfile(); the workers may still start
my $master = get_pid_from_pidfile('init') or die "no pid file";
my $n = 0;
for (1 .. 200) {
    $n = grep {
        open(my $fh, '<', "$_/stat");
        my $st = $fh ? <$fh> : '';
        $st =~ /\) \S (\d+)/ && $1 == $master;
    } glob '/proc/[0-9]*';
    last if $n >= 2;
    sleep 0.005;
}
open my $fh, '>', html_dir() . '/workers.txt' or die $!;
print $fh "workers=$n\n";
close $fh;
--- request
GET /workers.txt
--- response_body
workers=2
