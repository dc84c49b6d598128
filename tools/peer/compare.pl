#!/usr/bin/perl
# Compares the TAP of nginx-tests files run plain and with the module
# (tools/peer.sh): OUT/{plain,module}/FILE.tap, and FILE.first.tap when a
# file was run twice.
#
#   compare.pl --lost OUT FILE...     the files that lost tests (one a line)
#   compare.pl OUT FILE...            the Markdown table, totals and the
#                                     diagnostics of lost tests; exit
#                                     status 1 when a test is LOST
#
# The error.log of each nginx of the second runs is in
# OUT/logs/{plain,module}/FILE/; the lines of level warn and above that the
# module's run logged and the plain run did not (dates, process and
# connection numbers, ports and folders aside) follow the diagnostics.
#
# A test passes when its line is "ok" without "# skip".  Lost: passes
# plain, and fails, is skipped or is missing with the module.  LOST when
# lost in both runs of a file run twice, flaky when lost in one.

use strict;
use warnings;

my $list = @ARGV && $ARGV[0] eq '--lost' ? shift @ARGV : 0;
my ($out, @files) = @ARGV;

# prove's own lines, around the test's
my $PROVE = join '|', map { "(?:$_)" } (
    '^\S+\.t \.\. ?$', '^ok$', '^Dubious', '^Failed \d+/\d+ subtests',
    '^Test Summary Report', '^-+$', '^\S+\.t \(Wstat',
    '^\s+(Failed tests?|Non-zero exit|Parse errors|TODO passed)', '^Files=',
    '^Result:', '^All tests successful');
$PROVE = qr/$PROVE/;

sub parse {
    my ($path) = @_;
    my %r = (plan => '?', tests => {}, diag => {}, notes => []);
    my $cur;

    open(my $fh, '<', $path) or return undef;

    while (my $line = <$fh>) {
        chomp $line;

        if ($line =~ /^(not )?ok (\d+)\s*(?:- )?(.*)$/) {
            my ($not, $n, $rest) = ($1, $2, $3);
            my $st = $rest =~ /#\s*skip/i ? 'skip'
                   : $not && $rest =~ /#\s*TODO/i ? 'todo'
                   : $not ? 'fail' : 'pass';
            $rest =~ s/\s*#\s*(skip|TODO)\b.*//i;
            $r{tests}{$n} = { st => $st, name => $rest };
            $r{last} = $n;
            $cur = $n;
            push @{$r{diag}{$n}}, $line;

        } elsif ($line =~ /^1\.\.(\d+)(.*)/) {
            $r{plan} = $1;
            $r{skipall} = $2 if $1 == 0;
            $cur = undef;

        } elsif ($line =~ /^\S+\.t \.\. skipped: (.*)/) {
            # prove -v shows "1..0 # SKIP reason" so
            $r{plan} = 0;
            $r{skipall} = $1;

        } elsif ($line =~ /^\s*$/) {
            next;

        } elsif ($line =~ /^# (Looks like|peer:)/ || $line =~ $PROVE) {
            $cur = undef;

        } else {
            # a diagnostic of the test before, or what the file said as
            # it died (nginx's messages, perl's)
            push @{$r{diag}{$cur}}, $line if defined $cur;
            push @{$r{notes}}, $line if $line !~ /^#/;
        }
    }

    close $fh;
    return \%r;
}

# "1-3 7 9-12"
sub ranges {
    my @r;
    for my $n (@_) {
        if (@r && $r[-1][1] == $n - 1) { $r[-1][1] = $n } else { push @r, [$n, $n] }
    }
    return join ' ', map { $_->[0] == $_->[1] ? $_->[0] : "$_->[0]-$_->[1]" } @r;
}

sub passes {
    my ($r, $n) = @_;
    return $r && $r->{tests}{$n} && $r->{tests}{$n}{st} eq 'pass';
}

sub lost {
    my ($p, $m) = @_;
    return () unless $p;
    return sort { $a <=> $b }
           grep { passes($p, $_) && !passes($m, $_) } keys %{$p->{tests}};
}

sub count {
    my ($r, $st) = @_;
    return 0 unless $r;
    return scalar grep { $_->{st} eq ($st // 'pass') } values %{$r->{tests}};
}

# the lines of level warn and above of the error.logs of a folder,
# normalised, with how many times each came
sub logs {
    my ($dir) = @_;
    my %lines;

    for my $log (glob "$dir/*.error.log") {
        open(my $fh, '<', $log) or next;
        while (my $l = <$fh>) {
            next unless $l =~ /^\S+ \S+ \[(emerg|alert|crit|error|warn)\] /;
            $l =~ s/^\S+ \S+ //;
            $l =~ s/\] \d+#\d+: /] /;
            $l =~ s/\*\d+ /*N /g;
            $l =~ s!/\S*/nginx-test-[^/\s"]+!TESTDIR!g;
            $l =~ s/127\.0\.0\.1:\d+/127.0.0.1:PORT/g;
            $l =~ s/#\d+/#N/g;
            chomp $l;
            $lines{$l}++;
        }
        close $fh;
    }

    return \%lines;
}

# the groups of files summed up (PEER_GROUPS, shell patterns)
my @groups = map {
    my $g = $_;
    (my $re = $g) =~ s/([^\w*?])/\\$1/g;
    $re =~ s/\*/.*/g;
    $re =~ s/\?/./g;
    [$g, qr/^$re$/]
} split ' ', $ENV{PEER_GROUPS} || '';
my (%group, %skipped, %stopped, %states);

my (@rows, @details);
my %tot = map { $_ => 0 } qw/plain module planned lost flaky gained
                             injected skipped/;

for my $f (@files) {
    my $twice = -e "$out/module/$f.first.tap";
    my $sfx = $twice ? '.first' : '';
    my $p = parse("$out/plain/$f$sfx.tap");
    my $m = parse("$out/module/$f$sfx.tap");
    my @lost1 = lost($p, $m);

    if ($list) {
        print "$f\n" if @lost1;
        next;
    }

    my (%again, @confirmed, @flaky);
    my ($p2, $m2);

    if ($twice) {
        $p2 = parse("$out/plain/$f.tap");
        $m2 = parse("$out/module/$f.tap");
        %again = map { $_ => 1 } lost($p2, $m2);
    }

    for my $n (@lost1) {
        if ($again{$n}) { push @confirmed, $n } else { push @flaky, $n }
    }

    my @gained = $m ? sort { $a <=> $b }
        grep { passes($m, $_) && !passes($p, $_) } keys %{$m->{tests}} : ();

    my ($pp, $mp) = map { $_ ? $_->{plan} : 'none' } $p, $m;
    my ($pc, $mc) = (count($p), count($m));

    for my $g (@groups) {
        next unless $f =~ $g->[1];
        my $t = $group{$g->[0]} ||= {};
        $t->{files}++;
        $t->{plain} += $pc;
        $t->{module} += $mc;
        $t->{lost} += @confirmed;
        $t->{flaky} += @flaky;
    }

    $tot{plain} += $pc;
    $tot{module} += $mc;
    $tot{planned} += $pp if $pp =~ /^\d+$/;
    $tot{lost} += @confirmed;
    $tot{flaky} += @flaky;
    $tot{gained} += @gained;
    $tot{injected}++ if -s "$out/module/$f$sfx.conf";
    for my $st (qw/pass fail skip todo/) {
        $states{plain}{$st} += count($p, $st);
        $states{module}{$st} += count($m, $st);
    }

    if ($p && $p->{plan} =~ /^\d+$/ && $p->{plan} > 0
        && keys %{$p->{tests}} < $p->{plan})
    {
        # the file died before its plan: nginx did not start, most often
        my ($why) = grep { !/^\s/ } @{$p->{notes}};
        $why //= 'no message';
        $why =~ s!/\S*/nginx-test-[^/\s"]+/!TESTDIR/!g;
        $why =~ s/:\d+$//;
        push @{$stopped{$why}}, $f;
    }

    if ($p && defined $p->{skipall} && $pc == 0) {
        $tot{skipped}++;
        (my $why = $p->{skipall}) =~ s/^\s*#\s*skip\s*//i;
        push @{$skipped{$why}}, $f;
    }

    if (@lost1 || @gained || $pp ne $mp) {
        push @rows, sprintf "| %s | %d/%s | %d/%s | %s | %s | %s |", $f,
            $pc, $pp, $mc, $mp, ranges(@confirmed) || '-',
            ranges(@flaky) || '-', ranges(@gained) || '-';
    }

    # each lost test that ran, with its diagnostics
    for my $n (grep { $m && $m->{tests}{$_} } @lost1) {
        my $state = $again{$n} ? 'LOST' : 'flaky';
        my @runs = $twice ? ([first => $m], [second => $m2]) : ([only => $m]);
        my (@lines, $prev);

        for my $run (@runs) {
            my ($which, $r) = @$run;
            my @d = $r && $r->{diag}{$n} ? @{$r->{diag}{$n}}
                  : ("(test $n missing from this run)");
            splice(@d, 25, @d - 25, '# ...') if @d > 25;
            my $key = join "\n", grep { !/Date: / } @d;
            if (defined $prev && $key eq $prev) {
                push @lines, "-- $which run: the same";
                next;
            }
            $prev = $key;
            push @lines, "-- $which run:" if $twice;
            push @lines, @d;
        }

        push @details, "", "### $f, test $n ($state): $p->{tests}{$n}{name}",
            "", '```', @lines, '```';
    }

    # the lost tests that did not run: the file stopped before them
    my @missing = grep { !($m && $m->{tests}{$_}) } @lost1;

    if (@missing) {
        my %seen;
        my @notes = grep { !$seen{$_}++ } $m ? @{$m->{notes}} : ();
        splice(@notes, 25) if @notes > 25;

        push @details, "", sprintf("### %s, tests %s (%d, %s): did not run",
                $f, ranges(@missing), scalar @missing,
                join('/', map { $again{$_} ? 'LOST' : 'flaky' } $missing[0])),
            "", "The module's run stopped after test "
                . ($m && $m->{last} ? $m->{last} : 'none')
                . "; what the file said (first run):", "", '```',
            @notes ? @notes : '(nothing)', '```';
    }

    if (@lost1 && $twice) {
        my $pl = logs("$out/logs/plain/$f");
        my $ml = logs("$out/logs/module/$f");
        my @new = grep { !$pl->{$_} } sort keys %$ml;

        splice(@new, 30) if @new > 30;
        push @details, "", "$f, second run: error.log lines (warn and above)"
            . " of the module's run that the plain run did not log:", "",
            '```', (map { "$ml->{$_} x $_" } @new), @new ? () : '(none)',
            '```';
    }
}

exit 0 if $list;

print "## Files with differences\n\n";
print "| file | plain: pass/planned | module: pass/planned | LOST | flaky | GAINED |\n";
print "|---|---|---|---|---|---|\n";
print @rows ? join("\n", @rows) . "\n" : "| (none) | | | | | |\n";

print "\n## Totals\n\n";
printf "- files: %d; %d skipped whole on plain nginx (a feature or a daemon\n"
    . "  missing); %d with a location holding proxy_pass, where the\n"
    . "  directives were injected\n", scalar @files, $tot{skipped},
    $tot{injected};
printf "- tests passing: plain %d, with the module %d (of %d planned, each\n"
    . "  file's two checks of alerts and sanitizer reports included)\n",
    $tot{plain}, $tot{module}, $tot{planned};
for my $m (qw/plain module/) {
    printf "- test lines %s: %s\n", $m eq 'plain' ? 'plain' : 'with the module',
        join ', ', map { "$states{$m}{$_} $_" } qw/pass fail skip todo/;
}
printf "- files that stopped before their plan's end on plain nginx: %d\n",
    scalar map { @$_ } values %stopped;
printf "- LOST: %d, flaky: %d, GAINED: %d\n", $tot{lost}, $tot{flaky},
    $tot{gained};

if (%stopped) {
    print "\n## Files that stopped early on plain nginx, by their first message\n\n";
    print "The tests these files did not reach plain are not compared.\n\n";
    for my $why (sort { @{$stopped{$b}} <=> @{$stopped{$a}} || $a cmp $b }
                 keys %stopped)
    {
        my @f = @{$stopped{$why}};
        printf "- %s (%d): %s\n", $why, scalar @f,
            join(' ', map { s/\.t$//r } @f);
    }
}

if (%skipped) {
    print "\n## Files skipped whole on plain nginx, by reason\n\n";
    for my $why (sort { @{$skipped{$b}} <=> @{$skipped{$a}} || $a cmp $b }
                 keys %skipped)
    {
        my @f = @{$skipped{$why}};
        printf "- %s (%d): %s\n", $why, scalar @f,
            join(' ', map { s/\.t$//r } @f);
    }
}

if (grep { $group{$_->[0]} } @groups) {
    print "\n## Groups\n\n";
    print "| files | count | tests passing plain | with the module | LOST | flaky |\n";
    print "|---|---|---|---|---|---|\n";
    for my $g (@groups) {
        my $t = $group{$g->[0]} or next;
        printf "| %s | %d | %d | %d | %d | %d |\n", $g->[0], $t->{files},
            $t->{plain}, $t->{module}, $t->{lost}, $t->{flaky};
    }
}

if (@details) {
    print "\n## Tests lost, with the module run's diagnostics\n";
    print join("\n", @details), "\n";
}

exit($tot{lost} ? 1 : 0);
