package Test::Nginx::Socket;

# A compact runner of the Test::Nginx::Socket data format, used by
# `make test` only when the real Test::Nginx (CPAN) is not installed.
# The .t files are written for the real one; this runner gives the
# sections and functions below the real one's documented meaning.
#
# Functions: plan, run_tests, repeat_each, master_on, master_off, workers,
#   worker_connections, log_level, no_shuffle, no_long_string,
#   no_root_location, add_block_preprocessor, env_to_nginx, server_root,
#   html_dir, server_port, blocks, bail_out, and Test::More's functions.
# Sections: main_config, http_config, config, init (Perl, run after nginx
#   has started, before the requests), request (with eval), more_headers,
#   response_body (with eval), response_body_like, error_code,
#   response_headers, response_headers_like ("! Name": absent),
#   error_log, no_error_log (lines or eval: strings or qr//, against the
#   error log written by the block's requests), timeout, wait, must_die,
#   ONLY, SKIP, LAST (these three through Test::Base).
# Environment: TEST_NGINX_BINARY, TEST_NGINX_LOAD_MODULES (paths of .so
#   files, space separated), TEST_NGINX_SERVER_PORT / TEST_NGINX_PORT,
#   TEST_NGINX_SERVROOT; $TEST_NGINX_NAME in configs and requests is
#   replaced by the environment variable's value.

use strict;
use warnings;

use Test::Base ();
use Test::More ();
use Cwd qw(getcwd);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use IO::Select;
use List::Util qw(shuffle);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

our @EXPORT_FUNCS = qw(
    run_tests repeat_each master_on master_off workers worker_connections
    log_level no_shuffle no_long_string no_root_location
    add_block_preprocessor env_to_nginx server_root html_dir server_port
    bail_out
);

our $RepeatEach = 1;
our $MasterProcess = 'off';
our $Workers = 1;
our $WorkerConnections = 64;
our $LogLevel = 'debug';
our $NoShuffle = 0;
our $NoRootLocation = 0;
our @BlockPreprocessors;
our @EnvToNginx;

our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                  || 1984;
our $ServRoot = $ENV{TEST_NGINX_SERVROOT} || getcwd() . '/t/servroot';
our $HtmlDir = "$ServRoot/html";
our $NginxBinary = $ENV{TEST_NGINX_BINARY}
                   || (grep { -x } map { "$_/nginx" }
                       split(/:/, $ENV{PATH} || ''), '/usr/sbin')[0]
                   || 'nginx';

$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
$ENV{TEST_NGINX_SERVROOT} = $ServRoot;
$ENV{TEST_NGINX_HTML_DIR} = $HtmlDir;

my $Started;

sub import {
    my ($class, @args) = @_;
    my $caller = caller;

    no strict 'refs';
    for my $f (@EXPORT_FUNCS) {
        *{"${caller}::$f"} = \&{"${class}::$f"};
    }
    *{"${caller}::blocks"} = \&Test::Base::blocks;

    # Test::More's functions, and its plan if one is given
    my @more = grep { defined &{"Test::More::$_"} }
               @Test::More::EXPORT;
    *{"${caller}::$_"} = \&{"Test::More::$_"} for @more;

    if (@args) {
        Test::More::plan(@args);
    }

    # Test::Base reads the blocks from the caller's __DATA__ and, as for
    # the real one, compiles the caller with strict and warnings
    Test::Base->import();
}

sub repeat_each { $RepeatEach = shift if @_; return $RepeatEach }
sub master_on { $MasterProcess = 'on' }
sub master_off { $MasterProcess = 'off' }
sub workers { $Workers = shift if @_; return $Workers }
sub worker_connections { $WorkerConnections = shift if @_;
                         return $WorkerConnections }
sub log_level { $LogLevel = shift if @_; return $LogLevel }
sub no_shuffle { $NoShuffle = 1 }
sub no_long_string { }
sub no_root_location { $NoRootLocation = 1 }
sub add_block_preprocessor { push @BlockPreprocessors, shift }
sub env_to_nginx { push @EnvToNginx, @_ }
sub server_root { $ServRoot }
sub html_dir { $HtmlDir }
sub server_port { $ServerPort }
sub bail_out { Test::More::BAIL_OUT(@_) }

sub expand_env {
    my ($s) = @_;
    return $s unless defined $s;
    $s =~ s/\$(TEST_NGINX_[_A-Z0-9]+)/
        defined $ENV{$1} ? $ENV{$1}
                         : die "environment variable $1 is not set\n"/ge;
    return $s;
}

sub raw {
    my ($block, $name) = @_;
    return $block->can($name) ? $block->$name : undef;
}

# a section as its real value: "eval" sections are run by Test::Base
# filters already; our job is the env expansion of strings
sub value {
    my ($block, $name) = @_;
    my $v = $block->can($name) ? $block->$name : undef;
    return undef unless defined $v;
    return ref $v ? $v : expand_env($v);
}

sub write_config {
    my ($block) = @_;

    remove_tree($ServRoot);
    make_path("$ServRoot/conf", "$ServRoot/logs", "$ServRoot/html");

    my $modules = join '', map { "load_module $_;\n" }
                           split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} || '');
    my $env = join '', map { "env $_;\n" } @EnvToNginx;
    my $main = value($block, 'main_config') // '';
    my $http = value($block, 'http_config') // '';
    my $config = value($block, 'config') // '';
    my $root = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    open my $fh, '>', "$ServRoot/conf/nginx.conf" or die $!;
    print $fh <<"_EOC_";
$modules
worker_processes  $Workers;
daemon on;
master_process $MasterProcess;
error_log logs/error.log $LogLevel;
pid       logs/nginx.pid;
$env
$main

http {
    access_log logs/access.log;
    default_type text/plain;
    keepalive_timeout  68;

$http

    server {
        listen          $ServerPort;
        server_name     'localhost';
        client_max_body_size 30M;

$config

$root
    }
}

events {
    accept_mutex off;
    worker_connections  $WorkerConnections;
}
_EOC_
    close $fh;
}

sub reap_children {
    1 while waitpid(-1, WNOHANG) > 0;
}

sub read_pid {
    open my $fh, '<', "$ServRoot/logs/nginx.pid" or return undef;
    my $pid = <$fh>;
    close $fh;
    return undef unless defined $pid && $pid =~ /(\d+)/;
    return $1;
}

sub stop_nginx {
    return unless $Started;
    my $pid = $Started;
    $Started = undef;
    kill 'TERM', $pid;
    my $end = time + 10;
    while (time < $end) {
        reap_children();
        last unless kill 0, $pid;
        sleep 0.005;
    }
    if (kill 0, $pid) {
        kill 'KILL', $pid;
        reap_children();
    }
    # workers that are still finishing go with their master's group
    sleep 0.005 while time < $end && worker_left($pid);
}

sub worker_left {
    my ($master) = @_;
    for my $dir (glob '/proc/[0-9]*') {
        open my $fh, '<', "$dir/stat" or next;
        my $stat = <$fh>;
        close $fh;
        return 1 if defined $stat && $stat =~ /^\d+ \(.*?\) \S+ (\d+)/
                    && $1 == $master;
    }
    return 0;
}

# starts nginx; returns undef when it runs, or its error output
sub start_nginx {
    my $out = "$ServRoot/logs/stderr.log";
    my $rc = system("$NginxBinary -p $ServRoot/ -c conf/nginx.conf "
                    . "> $out 2>&1");
    reap_children();
    if ($rc != 0) {
        return slurp($out) || "nginx exited with $rc";
    }
    my $end = time + 5;
    my $pid;
    while (time < $end) {
        $pid = read_pid();
        if ($pid) {
            my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                             PeerPort => $ServerPort,
                                             Proto => 'tcp');
            if ($sock) {
                close $sock;
                $Started = $pid;
                return undef;
            }
        }
        sleep 0.005;
    }
    return "nginx did not start listening on $ServerPort\n"
           . (slurp("$ServRoot/logs/error.log") // '');
}

sub slurp {
    my ($file, $from) = @_;
    open my $fh, '<', $file or return undef;
    if ($from) {
        seek $fh, $from, 0;
    }
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s // '';
}

sub parse_request {
    my ($raw) = @_;
    $raw =~ s/^\s+//;
    my ($line, $body) = split /\n/, $raw, 2;
    $line =~ s/\s+$//;
    my ($method, $uri, $proto) = split /\s+/, $line;
    $proto ||= 'HTTP/1.1';
    if (defined $body) {
        $body =~ s/\n\z//;
    }
    return ($method, $uri, $proto, $body);
}

sub http_request {
    my ($block, $raw, $timeout) = @_;

    my ($method, $uri, $proto, $body) = parse_request($raw);
    my @headers = ("Host: localhost", "Connection: close");
    my $more = value($block, 'more_headers');
    if (defined $more) {
        for my $h (split /\n/, $more) {
            next unless $h =~ /\S/;
            push @headers, $h;
        }
    }
    if (defined $body && length $body) {
        push @headers, "Content-Length: " . length($body)
            unless grep { /^content-length:/i } @headers;
    } else {
        $body = '';
    }

    my $req = "$method $uri $proto\r\n" . join('', map { "$_\r\n" } @headers)
              . "\r\n" . $body;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => $ServerPort,
                                     Proto => 'tcp',
                                     Timeout => $timeout)
        or return { error => "cannot connect: $!" };
    binmode $sock;
    $sock->blocking(0);

    my $sel = IO::Select->new($sock);
    my $end = time + $timeout;
    my $off = 0;
    while ($off < length $req) {
        return { error => 'timeout sending' } if time > $end;
        next unless $sel->can_write($end - time);
        my $n = syswrite($sock, $req, length($req) - $off, $off);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            last;
        }
        $off += $n;
    }

    my $buf = '';
    my ($status, %h, @hl, $hdr_end);
    while (1) {
        my $left = $end - time;
        return { error => 'timeout', partial => $buf } if $left <= 0;
        if (!$sel->can_read($left)) {
            return { error => 'timeout', partial => $buf };
        }
        my $n = sysread($sock, $buf, 65536, length $buf);
        if (!defined $n) {
            next if $!{EAGAIN} || $!{EINTR};
            last;
        }
        last if $n == 0;
        if (!defined $hdr_end && (my $i = index($buf, "\r\n\r\n")) >= 0) {
            $hdr_end = $i + 4;
        }
        if (defined $hdr_end) {
            my $head = substr($buf, 0, $hdr_end);
            my $cl = $head =~ /^content-length:\s*(\d+)/mi ? $1 : undef;
            last if defined $cl && length($buf) - $hdr_end >= $cl;
            last if $head =~ /^transfer-encoding:\s*chunked/mi
                    && substr($buf, $hdr_end) =~ /(?:^|\r\n)0\r\n\r\n\z/;
            last if $method eq 'HEAD';
        }
    }
    close $sock;

    if (!defined $hdr_end) {
        $hdr_end = index($buf, "\r\n\r\n");
        return { error => 'no response header', partial => $buf }
            if $hdr_end < 0;
        $hdr_end += 4;
    }

    my $head = substr($buf, 0, $hdr_end);
    my $content = substr($buf, $hdr_end);
    my @lines = split /\r\n/, $head;
    my $sl = shift @lines;
    ($status) = $sl =~ m{^HTTP/\d\.\d\s+(\d+)};
    my %headers;
    for my $l (@lines) {
        next unless $l =~ /^([^:]+):\s*(.*)$/;
        my ($k, $v) = (lc $1, $2);
        $headers{$k} = defined $headers{$k} ? "$headers{$k}, $v" : $v;
    }
    if (($headers{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        while ($content =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($content, 0, $len);
            $content = substr($content, $len + 2);
        }
        $content = $out;
    }
    return { status => $status, headers => \%headers, body => $content };
}

sub check_log {
    my ($block, $name, $log, $want) = @_;
    my $v = value($block, $name);
    return unless defined $v;
    my @pats = ref $v eq 'ARRAY' ? @$v
             : ref $v ? ($v)
             : grep { /\S/ } split /\n/, $v;
    for my $p (@pats) {
        my $found = ref $p eq 'Regexp' ? $log =~ $p : index($log, $p) >= 0;
        my $what = "$name \"" . (ref $p ? "$p" : $p) . '"';
        Test::More::ok($want ? $found : !$found,
                       $block->name . " - $what");
    }
}

sub run_block {
    my ($block) = @_;
    my $name = $block->name;
    my $timeout = value($block, 'timeout') // 3;
    $timeout =~ s/\s+//g;
    $timeout =~ s/s$//;

    stop_nginx();
    write_config($block);

    my $err = start_nginx();

    if (defined raw($block, 'must_die')) {
        Test::More::ok(defined $err, "$name - nginx must die");
        my $log = ($err // '') . (slurp("$ServRoot/logs/error.log") // '');
        check_log($block, 'error_log', $log, 1);
        check_log($block, 'no_error_log', $log, 0);
        stop_nginx();
        return;
    }

    if (defined $err) {
        Test::More::fail("$name - nginx started");
        Test::More::diag($err);
        return;
    }

    if (defined(my $init = raw($block, 'init'))) {
        package main;
        eval $init;
        Test::More::fail("$name - init: $@") if $@;
    }

    my $log_file = "$ServRoot/logs/error.log";
    my $log_pos = -s $log_file || 0;

    my $request = value($block, 'request');
    if (defined $request) {
        for my $i (1 .. $RepeatEach) {
            my $res = http_request($block, $request, $timeout);
            check_response($block, $res, $i);
        }
    }

    if (defined(my $wait = value($block, 'wait'))) {
        $wait =~ s/\s+//g;
        sleep $wait;
    }

    my $log = slurp($log_file, $log_pos) // '';
    check_log($block, 'error_log', $log, 1);
    check_log($block, 'no_error_log', $log, 0);
}

sub check_response {
    my ($block, $res, $i) = @_;
    my $name = $block->name . ($RepeatEach > 1 ? " (repeat $i)" : '');

    if ($res->{error}) {
        Test::More::fail("$name - request: $res->{error}");
        return;
    }

    my $code = value($block, 'error_code') // 200;
    $code =~ s/\s+//g;
    Test::More::is($res->{status}, $code, "$name - status code ok");

    if (defined(my $want = value($block, 'response_headers'))) {
        for my $l (split /\n/, $want) {
            next unless $l =~ /\S/;
            if ($l =~ /^\s*!\s*(.+?)\s*$/) {
                Test::More::ok(!exists $res->{headers}{lc $1},
                               "$name - header $1 not present");
                next;
            }
            my ($k, $v) = $l =~ /^\s*([^:]+?)\s*:\s*(.*?)\s*$/ or next;
            Test::More::is($res->{headers}{lc $k}, $v,
                           "$name - header $k ok");
        }
    }

    if (defined(my $want = value($block, 'response_headers_like'))) {
        for my $l (split /\n/, $want) {
            next unless $l =~ /\S/;
            my ($k, $v) = $l =~ /^\s*([^:]+?)\s*:\s*(.*?)\s*$/ or next;
            Test::More::like($res->{headers}{lc $k} // '', qr/$v/,
                             "$name - header $k like ok");
        }
    }

    if (defined(my $want = value($block, 'response_body'))) {
        Test::More::is($res->{body}, $want, "$name - response_body - ok");
    }

    if (defined(my $want = value($block, 'response_body_like'))) {
        my $re = ref $want eq 'Regexp' ? $want : qr/$want/s;
        Test::More::like($res->{body}, $re,
                         "$name - response_body_like - ok");
    }
}

sub run_tests {
    # a daemonized nginx becomes our child, to be reaped at once
    eval { syscall(157, 36, 1) };

    my @blocks = Test::Base::blocks();
    for my $pre (@BlockPreprocessors) {
        $pre->($_) for @blocks;
    }
    @blocks = shuffle @blocks unless $NoShuffle;

    for my $block (@blocks) {
        my $t0 = time;
        run_block($block);
        Test::More::diag(sprintf "%.2fs %s", time - $t0, $block->name)
            if $ENV{TEST_NGINX_TIMING};
    }
    stop_nginx();
}

END {
    stop_nginx();
}

1;
