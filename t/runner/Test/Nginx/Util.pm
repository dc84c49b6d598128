package Test::Nginx::Util;

# The nginx side of the project's compact stand-in for openresty's
# Test::Nginx (see Test/Nginx/Socket.pm for what is supported): the
# settings, the generated nginx.conf, starting and stopping nginx, the
# per-block flow and the error log window.  Written from the real one's
# documentation and behaviour; none of its code is copied.
#
# The block flow follows the real Test::Nginx::Util::run_test():
#   block preprocessors, then the name becomes "$0 TEST n: ..."; a block
#   with a --- config stops the previous nginx (QUIT, or TERM with
#   TEST_NGINX_FAST_SHUTDOWN; KILL after timeout()), empties the server
#   root (conf, html, logs), writes conf/nginx.conf and starts nginx; a
#   block without one keeps the running nginx.  Then --- init is eval'ed
#   (in this package, under strict, as the real one does), then the
#   requests are sent repeat_each() times.  The error log window of each
#   repetition starts where the previous check stopped, the first one at
#   the start of the log, which nginx began when it started.

use strict;
use warnings;

use base 'Exporter';

use Carp qw(croak);
use Cwd qw(cwd);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use List::Util qw(shuffle);
use POSIX qw(SIGQUIT SIGKILL SIGTERM SIGHUP :sys_wait_h);
use Scalar::Util qw(looks_like_number);
use Time::HiRes qw(sleep);
use Test::More ();

our @EXPORT = qw(
    run_tests run_test repeat_each worker_connections workers master_on
    master_off master_process_enabled log_level no_shuffle no_root_location
    no_long_string check_accum_error_log config_preamble env_to_nginx
    add_block_preprocessor add_cleanup_handler add_test_cleanup_handler
    html_dir server_root server_port server_port_for_client server_addr
    server_name timeout bail_out sleep_time expand_env_in_text parse_time
    error_log_data access_log_data get_pid_from_pidfile is_running
    $ServerPort $ServerPortForClient $ServRoot $ConfFile $PidFile
    $NginxVersion $RepeatEach $NoLongString $ServerAddr $ServerName
    $RunTestHelper $CheckErrorLog
);

our $RepeatEach           = 1;
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $CheckAccumErrLog     = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $ServerAddr           = '127.0.0.1';
our $ServerName           = 'localhost';
our $NginxBinary          = $ENV{TEST_NGINX_BINARY} || 'nginx';
our $Workers              = 1;
our $WorkerConnections    = 64;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled        = 'on';
our $ServerPort           = $ENV{TEST_NGINX_SERVER_PORT}
                            || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient  = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $NoRootLocation       = 0;
our $TestNginxSleep       = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $ForceRestartOnTest   = $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} // 1;
our $LoadModules          = $ENV{TEST_NGINX_LOAD_MODULES};
our $NoLongString;
our $ConfigPreamble       = '';
our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers,
     @TestCleanupHandlers);
our ($RunTestHelper, $CheckErrorLog);   # set by Test::Nginx::Socket
our ($NginxVersion, $NginxRawVersion, $PrevConfig, $ErrLogFilePos);

our $ServRoot = $ENV{TEST_NGINX_SERVROOT}
                || File::Spec->rel2abs('t/servroot');
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;
our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $PidFile    = "$LogDir/nginx.pid";
our $CacheDir   = "$ServRoot/cache";

my $OwnerPid = $$;      # forked helpers of the tests must not stop nginx
my $NginxPid;           # the nginx this process started

sub repeat_each (@) { $RepeatEach = shift if @_; return $RepeatEach }
sub workers (@) { return $Workers unless @_; $Workers = shift }
sub worker_connections (@) {
    return $WorkerConnections unless @_;
    $WorkerConnections = shift;
}
sub log_level (@) { return $LogLevel unless @_; $LogLevel = shift }
sub master_on () { $MasterProcessEnabled = 'on' }
sub master_off () { $MasterProcessEnabled = 'off' }
sub master_process_enabled (@) {
    return $MasterProcessEnabled unless @_;
    $MasterProcessEnabled = shift() ? 'on' : 'off';
}
sub no_shuffle () { $NoShuffle = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub no_long_string () { $NoLongString = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub config_preamble ($) { $ConfigPreamble = shift }
sub timeout (@) { return $Timeout unless @_; $Timeout = shift }
sub sleep_time () { $TestNginxSleep }
sub html_dir () { $HtmlDir }
sub server_root () { $ServRoot }
sub server_addr (@) { return $ServerAddr unless @_; $ServerAddr = shift }
sub server_name (@) { return $ServerName unless @_; $ServerName = shift }
sub server_port (@) { return $ServerPort unless @_; $ServerPort = shift }
sub server_port_for_client (@) {
    return $ServerPortForClient unless @_;
    $ServerPortForClient = shift;
}
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }
sub add_test_cleanup_handler ($) { unshift @TestCleanupHandlers, shift }

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" unless @_;
    for my $v (@_) {
        croak "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub parse_time ($) {
    my $tm = shift;
    return $tm unless defined $tm;
    $tm =~ s/^\s+|\s+$//g;
    if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
        $tm /= 1000;
    } else {
        $tm =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $tm;
}

# $TEST_NGINX_FOO from the environment; an unset one stops the run
sub expand_env_in_text ($$;$) {
    my ($text, $name) = @_;
    return undef unless defined $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        defined $ENV{$1} ? $ENV{$1}
                         : bail_out("$name - No environment $1 defined.\n")
    }ge;
    return $text;
}

sub cleanup () {
    $_->() for @CleanupHandlers;
}

# ---- processes ----------------------------------------------------------

# a daemonized nginx becomes our child instead of init's, so it is reaped
# (and its pid freed) the moment it exits
sub set_child_subreaper {
    my $nr = eval { require 'syscall.ph'; &SYS_prctl() };
    if (!defined $nr) {
        require Config;
        my $arch = $Config::Config{archname} || '';
        $nr = $arch =~ /^(?:x86_64|amd64)/ ? 157
            : $arch =~ /^aarch64/ ? 167
            : $arch =~ /^(?:i\d86|arm)/ ? 172 : undef;
    }
    return defined $nr ? syscall($nr, 36, 1, 0, 0, 0) == 0 : 0;
}

sub proc_stat {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return;
    my $s = <$fh>;
    return unless defined $s && $s =~ /^(\d+) \((.*)\) (\S) (\d+)/s;
    return ($2, $3, $4);        # comm, state, ppid
}

sub is_running ($) {
    my ($pid) = @_;
    return 0 unless $pid;
    return 0 if waitpid($pid, WNOHANG) == $pid;
    return 0 unless kill 0, $pid;
    my (undef, $state) = proc_stat($pid);
    return !(defined $state && $state eq 'Z');
}

# nginx processes left to us (workers of a master that is gone): reaped
# if they are zombies, asked to go otherwise
sub reap_orphans {
    for my $dir (glob '/proc/[0-9]*') {
        my ($pid) = $dir =~ /(\d+)$/;
        my ($comm, $state, $ppid) = proc_stat($pid);
        next unless defined $ppid && $ppid == $$ && $comm =~ /^(?:nginx|memcheck)/;
        if ($state eq 'Z') {
            waitpid($pid, 0);
        } else {
            kill SIGKILL, $pid;
            waitpid($pid, 0);
        }
    }
}

sub get_pid_from_pidfile ($) {
    open my $in, '<', $PidFile or return undef;
    my $pid = <$in>;
    close $in;
    return defined $pid && $pid =~ /^(\d+)/ ? $1 : undef;
}

sub kill_process {
    my ($pid, $name) = @_;
    return unless is_running($pid);
    kill($ENV{TEST_NGINX_FAST_SHUTDOWN} ? SIGTERM : SIGQUIT, $pid);
    my $end = Time::HiRes::time() + $Timeout;
    my $step = 0.0005;
    while (is_running($pid)) {
        if (Time::HiRes::time() > $end) {
            warn "$name - timeout when waiting for the process $pid to exit\n";
            kill SIGKILL, (getpgrp($pid) == $pid ? -$pid : $pid);
            my $kill_end = Time::HiRes::time() + 5;
            sleep 0.005 while is_running($pid)
                              && Time::HiRes::time() < $kill_end;
            last;
        }
        sleep $step;
        $step *= 1.5 if $step < 0.008;
    }
}

sub stop_nginx {
    my ($name) = @_;
    my $pid = $NginxPid // get_pid_from_pidfile($name);
    undef $NginxPid;
    kill_process($pid, $name) if $pid;
    reap_orphans();
}

sub find_nginx_binary {
    return $NginxBinary if $NginxBinary =~ m{/};
    for my $dir (split(/:/, $ENV{PATH} || ''), '/usr/sbin') {
        my $p = File::Spec->catfile($dir eq '' ? '.' : $dir, $NginxBinary);
        return $p if -f $p && -x _;
    }
    return $NginxBinary;
}

sub get_nginx_version {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to get the version of the Nginx in PATH: "
                 . ($out // ''));
    }
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)}s)
    {
        $NginxRawVersion = "$1.$2.$3";
        return sprintf "%d.%03d%03d", $1, $2, $3;
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

# runs the nginx command line; returns its wait status and its stderr
sub spawn_nginx {
    my @cmd = ($NginxBinary,
               ($NginxVersion >= 1.019005 ? ('-e', $ErrLogFile) : ()),
               '-p', "$ServRoot/", '-c', $ConfFile);
    my $errfile = "$LogDir/nginx.stderr";
    my $pid = fork();
    bail_out("fork() failed: $!") unless defined $pid;
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', $errfile;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $status = $?;
    return ($status, slurp($errfile) // '');
}

# starts nginx; returns undef once it runs, or what went wrong
sub start_nginx {
    my ($name) = @_;
    my ($status, $stderr) = spawn_nginx();
    if ($status != 0) {
        return "nginx exited with status " . ($status >> 8)
               . ($status & 127 ? " (signal " . ($status & 127) . ")" : '')
               . "\n$stderr" . error_log_tail();
    }
    # the pid file is written by the daemon, after its parent has exited
    my $end = Time::HiRes::time() + 5;
    my $pid;
    until ($pid = get_pid_from_pidfile($name)) {
        return "no pid file after nginx started\n" . error_log_tail()
            if Time::HiRes::time() > $end;
        sleep 0.0005;
    }
    $NginxPid = $pid;
    if ($MasterProcessEnabled eq 'on' && $Workers =~ /^\d+$/) {
        # the listening socket takes connections already; the workers are
        # awaited for the tests that look at them
        $end = Time::HiRes::time() + 2;
        while (Time::HiRes::time() < $end) {
            my $n = grep {
                my (undef, undef, $ppid) = proc_stat(m{(\d+)$});
                defined $ppid && $ppid == $pid
            } glob '/proc/[0-9]*';
            last if $n >= $Workers;
            sleep 0.001;
        }
    }
    return undef;
}

sub error_log_tail {
    my $log = slurp($ErrLogFile);
    return '' unless defined $log && length $log;
    my @l = split /\n/, $log;
    splice @l, 0, @l - 20 if @l > 20;
    return "error.log (tail):\n" . join("\n", @l) . "\n";
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return undef;
    local $/;
    my $s = <$fh>;
    return $s // '';
}

# ---- server root and nginx.conf -------------------------------------------

sub setup_server_root {
    # only what the runner makes is removed; anything else left in the
    # server root stops the run, as with the real Test::Nginx
    if (-d $ServRoot) {
        remove_tree($ConfDir, $HtmlDir, $LogDir, $CacheDir,
                    glob("$ServRoot/*_cache"), glob("$ServRoot/*_temp"));
        rmdir $ServRoot
            or bail_out("Can't remove $ServRoot (not empty?): $!");
    }
    make_path($LogDir, $HtmlDir, $ConfDir);
    open my $out, '>', "$HtmlDir/index.html"
        or bail_out("Can't open $HtmlDir/index.html for writing: $!\n");
    print $out '<html><head><title>It works!</title></head>'
               . '<body>It works!</body></html>';
    close $out;
}

# --- user_files: ">>> name [touch date]" lines, each followed by its body
sub write_user_files {
    my ($block) = @_;
    my $name = $block->name;
    my $files = $block->user_files;
    return unless $files;
    if (!ref $files) {
        my @list;
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, undef, $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    }
    bail_out("$name - wrong value type: " . ref($files)
             . ", only scalar or ARRAY are accepted")
        unless ref $files eq 'ARRAY';
    for my $f (@$files) {
        my ($fname, $body, $date) = @$f;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        make_path($1) if $path =~ m{(.*)/} && !-d $1;
        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out expand_env_in_text($body // '', $name);
        close $out;
        if ($date) {
            system("TZ=GMT touch -t '$date' '$path'") == 0
                or bail_out("Failed to touch $path\n");
        }
    }
}

sub write_config_file {
    my ($block, $config) = @_;
    my $name = $block->name;
    my $http_config = expand_env_in_text($block->http_config, $name) // '';
    my $main_config = $block->main_config // '';
    if ($LoadModules) {
        my @m = map { "load_module $_;" } grep { length } split /\s+/,
                $LoadModules;
        $main_config = join ' ', @m, $main_config;
    }
    $main_config = expand_env_in_text($main_config, $name);
    my $post_main = expand_env_in_text($block->post_main_config, $name)
                    // '';
    my $server_name = $block->server_name // $ServerName;
    $server_name =~ s/([\\'])/\\$1/g;
    $config //= '';

    my $temp = '';
    for my $t (qw(client_body proxy fastcgi scgi uwsgi)) {
        $temp .= " ${t}_temp_path $ServRoot/${t}_temp;"
            unless $http_config =~ /\b${t}_temp_path\b/;
    }
    my $env = join '', map { my $v = /\s/ ? "'$_'" : $_; "env $v;\n" }
                       qw(LD_PRELOAD LD_LIBRARY_PATH), @EnvToNginx;
    my $root = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    my $user = $> == 0 ? "user root;\n" : '';

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out <<"_EOC_";
worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $ErrLogFile $LogLevel;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;$temp

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config
    server {
        listen          $ServerPort;
        server_name     '$server_name';
        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root    }
}

$post_main

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
}
$user
_EOC_
    close $out;
}

# ---- the error log --------------------------------------------------------

# the lines written since the previous call of the block (all of them with
# check_accum_error_log); waits a little first for the log phase, unless
# only the runner's warnings about [alert], [crit] and [emerg] lines want
# them
sub error_log_data (;$) {
    my ($no_wait) = @_;
    sleep $TestNginxSleep * 3 unless $no_wait;
    open my $in, '<', $ErrLogFile or return undef;
    seek $in, $ErrLogFilePos, 0 if !$CheckAccumErrLog && $ErrLogFilePos;
    my @lines = <$in>;
    $ErrLogFilePos = tell $in unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub access_log_data () {
    sleep $TestNginxSleep * 3;
    open my $in, '<', $AccLogFile or return undef;
    my @lines = <$in>;
    return \@lines;
}

# ---- the run --------------------------------------------------------------

sub run_tests () {
    set_child_subreaper();
    $NginxBinary = find_nginx_binary();
    $NginxVersion = get_nginx_version();
    $ENV{TEST_NGINX_SERVER_PORT} //= $ServerPort;

    for my $block ($NoShuffle ? Test::Base::blocks()
                              : shuffle Test::Base::blocks())
    {
        $_->($block) for @BlockPreprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_test($block);
        $_->($block) for @TestCleanupHandlers;
    }
    cleanup();
}

sub run_test ($) {
    my ($block) = @_;
    return if defined $block->SKIP;
    my $name = $block->name;
    my $config = expand_env_in_text($block->config, $name);
    local $LogLevel = $block->log_level || $LogLevel;
    my $must_die = $block->must_die;

    my $restart = 1;
    if (!defined $config) {
        # the real one keeps the nginx of the previous block
        bail_out("$name - No '--- config' section specified and could not "
                 . "get previous one.")
            unless defined $PrevConfig;
        $restart = 0;
    } elsif (!$ForceRestartOnTest && defined $PrevConfig
             && $config eq $PrevConfig && !defined $must_die) {
        $restart = 0;
    }

    if ($restart) {
        $PrevConfig = $config;
        stop_nginx($name);
        setup_server_root();
        if (defined(my $code = $block->post_setup_server_root)) {
            eval $code;
            bail_out("$name - post_setup_server_root failed: $@") if $@;
        }
        write_user_files($block);
        write_config_file($block, $config);

        if (defined $must_die) {
            $ErrLogFilePos = 0;
            for my $i (0 .. $RepeatEach - 1) {
                my ($status, $stderr) = spawn_nginx();
                my $code = $status >> 8;
                if ($status & 128) {
                    Test::More::fail("$name - nginx core dumped");
                } elsif (looks_like_number($must_die)) {
                    Test::More::is($must_die, $code,
                                   "$name - die with the expected exit code");
                } else {
                    Test::More::isnt($status, 0, "$name - die as expected");
                }
                $CheckErrorLog->($block, undef, 0, $i, 0);
                if ($status == 0) {
                    warn "WARNING: $name - nginx must die but it does not; "
                         . "killing it (req $i)\n";
                    stop_nginx($name);
                }
            }
            return;
        }

        if (defined(my $err = start_nginx($name))) {
            Test::More::fail("$name - nginx started");
            Test::More::diag($err);
            stop_nginx($name);
            return;
        }
    }

    if ($block->init) {
        run_init($block, $name);
    }

    $ErrLogFilePos = 0;
    for my $i (0 .. $RepeatEach - 1) {
        write_user_files($block) if $i > 0;
        $RunTestHelper->($block, $i);
    }
}

# --- init runs here, in this package and under strict like the real one:
# names of the test file's own subs need their package (main::foo())
sub run_init {
    my ($block, $name) = @_;
    eval $block->init;
    bail_out("$name - init failed: $@") if $@;
}

END {
    if ($$ == $OwnerPid) {
        local $?;
        cleanup();
        if (!$ENV{TEST_NGINX_NO_CLEAN}) {
            stop_nginx('END');
        }
    }
}

1;
