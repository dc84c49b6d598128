# The Debian package of make deb, installed into the machine's own nginx as
# a user would (apt-get install ./<the .deb>): Debian's stock nginx.conf
# loads it (nginx -T, nginx -t), a request goes through its gate, and
# apt-get purge leaves nothing behind.
#
# It changes the system, so it runs as root only (skipped otherwise), leaves
# alone a copy of the package that was there before it (skipped then), and
# purges the package when it ends, whether its blocks pass or not.  No
# service is started or reloaded: a policy-rc.d refuses for the time of
# each apt-get, unless the machine has a policy of its own.

use lib 't/lib';
use Test::Nginx::Socket;
use Cwd qw(getcwd);
use IO::Socket::INET;
use ScriptingGate::Mock;
use ScriptingGate::Util qw(html_put http_get wait_until);

our $Pkg = 'libnginx-mod-http-scripting-gate';
our $Top = getcwd();
our $Dir = "$Top/build/test-artifacts/package";
our $Nginx = '/usr/sbin/nginx';     # Debian's, whatever the suite runs
our $Conf = '/etc/nginx/modules-enabled/50-mod-http-scripting-gate.conf';
our @Deb = glob("$Top/build/deb/${Pkg}_*.deb");
our $Installed = 0;
our $Port80;
our $Policy = '/usr/sbin/policy-rc.d';
our $Mark = 'written by t/070-package.t';
my $main = $$;

# "install ok installed", "deinstall ok config-files", or "" when unknown
sub status {
    my $s = `dpkg-query -W -f='\${Status}' $Pkg 2>/dev/null`;
    return $s =~ /not-installed/ ? '' : $s;
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return undef;
    local $/;
    return <$fh>;
}

# apt-get, its output appended to $Dir/apt.log; true on success
sub apt {
    my (@args) = @_;
    my $own = !-e $Policy;
    if ($own) {
        open my $fh, '>', $Policy or die "$Policy: $!";
        print $fh "#!/bin/sh\n# $Mark\nexit 101\n";
        close $fh;
        chmod 0755, $Policy;
    }
    local $ENV{DEBIAN_FRONTEND} = 'noninteractive';
    my $rc = system("apt-get -y -q -o DPkg::Lock::Timeout=300 @args"
                    . " >> $Dir/apt.log 2>&1");
    unlink $Policy if $own;
    return $rc == 0;
}

# a field of an installed package
sub field {
    my ($pkg, $name) = @_;
    return scalar `dpkg-query -W -f='\${$name}' $pkg 2>/dev/null`;
}

# "ok", or what nginx -t of the stock nginx.conf said
sub nginx_t {
    my $out = `$Nginx -t 2>&1`;
    return $? == 0 && $out =~ /test is successful/ ? "ok" : "failed:\n$out";
}

sub port80 { return scalar `ss -Hltn 'sport = :80' 2>&1` }

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1) or die "socket: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# Debian's stock nginx.conf as it is, but for its pid, its logs and its
# sites: $Dir/nginx.conf, with $Dir/site.conf, a gated and retried location
# on $port in front of the mock; returns what went wrong, if anything
sub stock_conf {
    my ($port) = @_;
    my $conf = slurp('/etc/nginx/nginx.conf') // '';
    my $err = '';
    for (['pid /run/nginx.pid;', "pid $Dir/nginx.pid;"],
         ['error_log /var/log/nginx/error.log;', "error_log $Dir/error.log;"],
         ['access_log /var/log/nginx/access.log;',
          "access_log $Dir/access.log;"],
         ['include /etc/nginx/sites-enabled/*;', "include $Dir/site.conf;"])
    {
        $conf =~ s/\Q$_->[0]\E/$_->[1]/
            or $err .= "not in /etc/nginx/nginx.conf: $_->[0]\n";
    }
    open my $fh, '>', "$Dir/nginx.conf" or return "$Dir/nginx.conf: $!";
    print $fh $conf;
    close $fh;
    open $fh, '>', "$Dir/site.conf" or return "$Dir/site.conf: $!";
    print $fh <<"_EOC_";
scripting_gate_zone  \$script_key  zone=package:1m;

server {
    listen 127.0.0.1:$port;

    location ~ ^/api/v2/scripts/(?<script_id>[^/]+) {
        set \$script_key "\$script_id:\$arg_scriptDataVersion";
        scripting_gate  zone=package limit=2 queue=10 queue_timeout=5s;
        scripting_retry on=429 attempts=3 base=10ms cap=50ms deadline=5s;
        proxy_pass http://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT};
    }

    location = /scripting-gate/status {
        scripting_gate_stats;
    }
}
_EOC_
    close $fh;
    return $err;
}

sub stop_nginx {
    return unless -e "$Dir/nginx.pid";
    system("$Nginx -c $Dir/nginx.conf -s stop 2>/dev/null");
    for (1 .. 500) {
        last unless -e "$Dir/nginx.pid";
        select(undef, undef, undef, 0.01);
    }
}

END {
    if ($$ == $main && $Installed) {
        local $?;
        stop_nginx();
        apt('purge', $Pkg) if status();
        # the policy-rc.d of an apt-get that a signal cut short
        unlink $Policy if (slurp($Policy) // '') =~ /^# \Q$Mark\E$/m;
    }
}

if ($> != 0) {
    plan skip_all => "installing $Pkg needs root: run make test as root";

} elsif (!-x '/usr/bin/apt-get' || !-x '/usr/bin/dpkg-query') {
    plan skip_all => "no apt-get here: the package is for Debian";

} elsif (status()) {
    plan skip_all => "$Pkg is on this machine already (" . status()
                     . "): left alone; apt-get purge $Pkg to run this test";

} else {
    die "t/070-package.t: no single build/deb/${Pkg}_*.deb"
        . " (found " . scalar(@Deb) . "): run make deb first (make test does)\n"
        unless @Deb == 1;
    plan 'no_plan';
    # END purges on an interrupt too, and when prove goes away
    $SIG{$_} = sub { exit 1 } for qw(INT TERM HUP PIPE);
    system("rm -rf $Dir && mkdir -p $Dir");
    $Port80 = port80();
    ScriptingGate::Mock::start(delay => 0);
}

no_shuffle();

run_tests();

__DATA__

=== TEST 1: apt-get install puts the module, its load_module file and the docs in place
--- config
--- init
package main;
our ($Pkg, $Top, $Dir, $Nginx, $Conf, @Deb, $Installed, $Port80);
$Installed = 1;
my $ok = apt('install', '--no-install-recommends', $Deb[0]);
my ($version) = (slurp("$Top/debian/changelog") // '') =~ /^\S+ \(([^)]+)\)/;
my $got = field($Pkg, 'Version');
my ($abi) = field('nginx', 'Provides') =~ /(nginx-abi-[^\s,]+)/;
my @depends = split /,\s*/, field($Pkg, 'Depends');
my $so = '/usr/lib/nginx/modules/ngx_http_scripting_gate_module.so';
my $avail = '/usr/share/nginx/modules-available/mod-http-scripting-gate.conf';
my $doc = "/usr/share/doc/$Pkg";
my @docs = sort map { s{^\Q$doc\E/}{}r } grep { !-d } glob("$doc/*");
my @examples = sort map { s{^.*/}{}r } glob("$doc/examples/*");
my @ours = sort map { s{^.*/}{}r } glob("$Top/conf-examples/*");
my $readme = slurp("$Top/README.md") // '';
html_put('result.txt',
    "apt-get install: " . ($ok ? "ok" : "failed:\n" . slurp("$Dir/apt.log"))
    . "\nversion: " . ($got eq $version ? "debian/changelog's"
                                        : "$got, not $version")
    . "\ndepends on the ABI of the machine's nginx: "
    . ((grep { $_ eq $abi } @depends) ? "yes" : "no (@depends)")
    . "\n$so: " . (-f $so ? "there" : "missing")
    . "\n$avail: " . (slurp($avail) // "missing\n")
    . "$Conf -> " . (readlink($Conf) // "missing")
    . "\n$doc: @docs"
    . "\nexamples: "
    . ("@examples" eq "@ours" ? "conf-examples/*" : "@examples")
    . "\nREADME names the version: "
    . ($readme =~ /\bversion \Q$version\E\b/ ? "yes" : "no") . "\n");
--- request
GET /result.txt
--- response_body
apt-get install: ok
version: debian/changelog's
depends on the ABI of the machine's nginx: yes
/usr/lib/nginx/modules/ngx_http_scripting_gate_module.so: there
/usr/share/nginx/modules-available/mod-http-scripting-gate.conf: load_module modules/ngx_http_scripting_gate_module.so;
/etc/nginx/modules-enabled/50-mod-http-scripting-gate.conf -> /usr/share/nginx/modules-available/mod-http-scripting-gate.conf
/usr/share/doc/libnginx-mod-http-scripting-gate: README.md.gz STATS.md.gz changelog.gz copyright
examples: conf-examples/*
README names the version: yes



=== TEST 2: Debian's stock nginx.conf loads it: nginx -T shows it, nginx -t passes
--- init
package main;
our ($Pkg, $Top, $Dir, $Nginx, $Conf, @Deb, $Installed, $Port80);
my $dump = `$Nginx -T 2>&1`;
my $line = 'load_module modules/ngx_http_scripting_gate_module.so;';
html_put('result.txt', "nginx -T: "
    . ($dump =~ /^# configuration file \Q$Conf\E:\n\Q$line\E$/m
       ? "load_module from $Conf" : "no load_module from $Conf:\n$dump")
    . "\nnginx -t: " . nginx_t() . "\n");
--- request
GET /result.txt
--- response_body
nginx -T: load_module from /etc/nginx/modules-enabled/50-mod-http-scripting-gate.conf
nginx -t: ok



=== TEST 3: the stock nginx.conf, with a site of its own, gates and retries a request
--- init
package main;
our ($Pkg, $Top, $Dir, $Nginx, $Conf, @Deb, $Installed, $Port80);
my $port = $ENV{TEST_NGINX_PACKAGE_PORT} || free_port();
my $err = stock_conf($port);
unless ($err) {
    my $out = `$Nginx -c $Dir/nginx.conf 2>&1`;
    $err = $out || "nginx exited with $?\n" if $?;
}
my $base = "http://127.0.0.1:$port";
my ($one, $two, $st) = ({}, {}, '');
unless ($err) {
    $one = http_get("$base/api/v2/scripts/pkg?scriptDataVersion=1");
    ScriptingGate::Mock::plan('pkg:2:', '429/ra=none');
    $two = http_get("$base/api/v2/scripts/pkg?scriptDataVersion=2");
    # a worker gives the slot back once it is done with the request, which
    # may be just after the client has the response: the other worker's
    # status can be that much ahead
    wait_until(2, sub {
        $st = http_get("$base/scripting-gate/status")->{content} // '';
        $st !~ /"active":[1-9]/;
    });
}
stop_nginx();
my ($k1) = $st =~ /"pkg:1":(\{[^}]*\})/;
my ($k2) = $st =~ /"pkg:2":(\{[^}]*\})/;
html_put('result.txt', ($err ? "error: $err" : "started\n")
    . "first: " . ($one->{status} // '') . " " . ($one->{content} // '')
    . "\nafter a 429: " . ($two->{status} // '') . " " . ($two->{content} // '')
    . "\npkg:1 " . ($k1 // 'not counted')
    . "\npkg:2 " . ($k2 // 'not counted')
    . "\nstopped: " . (-e "$Dir/nginx.pid" ? "no" : "yes") . "\n");
--- request
GET /result.txt
--- response_body
started
first: 200 {"id":"pkg","name":"Script pkg","versionId":"1"}
after a 429: 200 {"id":"pkg","name":"Script pkg","versionId":"2"}
pkg:1 {"passed":1,"queued_total":0,"rejected":0,"timed_out":0,"upstream_429":0,"retries":0,"limit":2,"active":0,"queued":0,"cooldown_ms":0,"effective_limit":2,"limit_decreases":0,"limit_increases":0}
pkg:2 {"passed":2,"queued_total":0,"rejected":0,"timed_out":0,"upstream_429":1,"retries":1,"limit":2,"active":0,"queued":0,"cooldown_ms":0,"effective_limit":2,"limit_decreases":0,"limit_increases":0}
stopped: yes
--- timeout: 10



=== TEST 4: apt-get purge leaves nothing behind, and the stock nginx.conf still passes nginx -t
--- init
package main;
our ($Pkg, $Top, $Dir, $Nginx, $Conf, @Deb, $Installed, $Port80);
my $ok = apt('purge', $Pkg);
my @left = grep { /scripting.gate/i }
           map { glob("$_/*") } qw(/etc/nginx/modules-enabled
                                   /usr/share/nginx/modules-available
                                   /usr/lib/nginx/modules);
push @left, "/usr/share/doc/$Pkg" if -e "/usr/share/doc/$Pkg";
my $now = port80();
html_put('result.txt',
    "apt-get purge: " . ($ok ? "ok" : "failed:\n" . slurp("$Dir/apt.log"))
    . "\npackage: " . (status() || "gone")
    . "\nleft: " . (@left ? "@left" : "nothing")
    . "\nnginx -t: " . nginx_t()
    . "\nport 80: " . ($now eq $Port80 ? "as before the test"
                                        : "now ${now}was $Port80") . "\n");
--- request
GET /result.txt
--- response_body
apt-get purge: ok
package: gone
left: nothing
nginx -t: ok
port 80: as before the test
