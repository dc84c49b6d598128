#!/usr/bin/perl
# bench/series.pl: the per-second view of a run, for bench/run.sh's
# "adaptive" scenario.  Runs beside the load generator: every STEP seconds
# from its start it reads the mock's accounting (/__mock/stats) and the
# gateway's stats (/status), and at the times given it changes the mock's
# limit (POST /__mock/config?limit=N), just after that moment's sample
# (0:N sets it before the start).
#
#   perl bench/series.pl MOCK_PORT GW_PORT SECONDS STEP [T:LIMIT,...]
#
# Prints one line per sample, cumulative counters as read:
#   i t_s ok_200 upstream_429 upstream_requests in_flight eff_min eff_max
#   decreases increases retries limit
# i: the sample's number (scheduled at i * STEP s), t_s: when it was read;
# limit: the mock's limit during the STEP that ends with the sample.
# (t_s is measured, not scheduled: a late sample is seen as late.)

use strict;
use warnings;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(time sleep);

if (@ARGV && $ARGV[0] eq '--report') {
    shift;
    report(@ARGV);
    exit;
}

my ($mport, $gport, $secs, $step, $changes) = @ARGV;
my %change = map { split /:/ } split /,/, ($changes // '');
my $http = HTTP::Tiny->new(timeout => 2, keep_alive => 1);
my $limit = '-';

sub get {
    my $r = $http->get($_[0]);
    return $r->{success} ? eval { decode_json($r->{content}) } : undef;
}

sub sample {
    my ($i, $t) = @_;
    my $m = get("http://127.0.0.1:$mport/__mock/stats") or return;
    my $g = get("http://127.0.0.1:$gport/status");
    my ($ok, $n429, $req, $fl) = (0, 0, 0, 0);
    for my $k (values %{$m->{keys}}) {
        $ok += $k->{status}{200} // 0;
        $n429 += $k->{status}{429} // 0;
        $req += $k->{requests};
        $fl += $k->{in_flight};
    }
    my ($emin, $emax, $dec, $inc, $ret) = ('-', '-', 0, 0, 0);
    for my $z (values %{$g ? $g->{zones} : {}}) {
        for my $k (values %{$z->{keys} // {}}) {
            my $e = $k->{effective_limit} // next;
            $emin = $e if $emin eq '-' || $e < $emin;
            $emax = $e if $emax eq '-' || $e > $emax;
            $dec += $k->{limit_decreases} // 0;
            $inc += $k->{limit_increases} // 0;
            $ret += $k->{retries} // 0;
        }
    }
    printf "%d %.3f %d %d %d %d %s %s %d %d %d %s\n",
        $i, $t, $ok, $n429, $req, $fl, $emin, $emax, $dec, $inc, $ret, $limit;
}

$| = 1;
if (exists $change{0}) {
    $http->post("http://127.0.0.1:$mport/__mock/config?limit=$change{0}");
    $limit = $change{0};
}
my $t0 = time;
sample(0, 0);
for (my $i = 1; $i * $step <= $secs + 1e-9; $i++) {
    my $at = $t0 + $i * $step;
    my $wait = $at - time;
    sleep $wait if $wait > 0;
    sample($i, time - $t0);
    my $key = sprintf '%g', $i * $step;
    if (exists $change{$key}) {
        $http->post("http://127.0.0.1:$mport/__mock/config?limit=$change{$key}");
        $limit = $change{$key};
    }
}


# --report PER_UNIT FILE...: the runs' samples as markdown: a summary per
# run, the time each run took to come back above 85 % of the new capacity
# after each change, and the goodput of every 1 s window.  PER_UNIT: the
# capacity per unit of the mock's limit (requests/s).
sub report {
    my ($unit, @files) = @_;
    my (@runs, %seen);
    for my $f (@files) {
        open my $fh, '<', $f or die "$f: $!";
        my (%s, $tail, $step);
        while (<$fh>) {
            chomp;
            if (/^# (.*)/) { $tail = $1; next; }
            my @v = split;
            $s{$v[0]} = \@v;
        }
        my @idx = sort { $a <=> $b } keys %s;
        # the step: the scheduled time of the samples, from their reading times
        $step = $s{$idx[-1]}[1] / $idx[-1];
        $step = sprintf('%.2f', $step) + 0;
        my $per = int(1 / $step + 0.5);
        my %run = (s => \%s, per => $per, step => $step, last => $idx[-1]);
        my ($la, $res, $up) = split /\s*\|\s*/, $tail // '';
        ($run{load}) = ($la // '') =~ /load (\S+)/;
        my %r = ($res // '') =~ /(\w+)=(\S+)/g;
        $run{wrk} = \%r;
        ($run{peak}) = split / /, ($up // '0');
        push @runs, \%run;
    }

    # a sample by number, or the nearest one read before it
    my $at = sub {
        my ($run, $i) = @_;
        $i-- while $i > 0 && !$run->{s}{$i};
        return $run->{s}{$i};
    };
    my $rate = sub {
        my ($run, $a, $b, $col) = @_;
        my ($x, $y) = ($at->($run, $a), $at->($run, $b));
        my $dt = $y->[1] - $x->[1];
        return $dt > 0 ? ($y->[$col] - $x->[$col]) / $dt : 0;
    };
    my $limit_of = sub { my ($run, $i) = @_; return $at->($run, $i)->[11]; };

    # the phases: runs of samples with the same limit
    my $r0 = $runs[0];
    my @phases;     # [first sample, last sample, limit]
    for my $i (1 .. $r0->{last}) {
        my $l = $limit_of->($r0, $i);
        if (!@phases || $phases[-1][2] ne $l) {
            push @phases, [$i - 1, $i, $l];
        } else {
            $phases[-1][1] = $i;
        }
    }

    # summary per run
    my @hdr = map { my ($a, $b, $l) = @$_;
        sprintf "%g-%g s, limit %s", $a * $r0->{step}, $b * $r0->{step}, $l } @phases;
    print "| run | load avg | client answers by status | ",
        join(" | ", map { "goodput / capacity, $_" } @hdr),
        " | ", join(" | ", map { "upstream 429s / requests, $_" } @hdr),
        " | upstream peak in flight per key |\n";
    print "|---" x (3 + 2 * @phases + 1), "|\n";
    my $n = 0;
    my @rec;
    for my $run (@runs) {
        $n++;
        my %c = map { split /=/ } split /,/, ($run->{wrk}{statuses} // '');
        my (@g, @q);
        for my $p (@phases) {
            my ($a, $b, $l) = @$p;
            my $cap = $l * $unit;
            push @g, sprintf "%.1f %%", 100 * $rate->($run, $a, $b, 2) / $cap;
            my ($x, $y) = ($at->($run, $a), $at->($run, $b));
            my $req = $y->[4] - $x->[4];
            my $z = $at->($run, $a + 2 * $run->{per});
            my $req2 = $y->[4] - $z->[4];
            push @q, sprintf "%d / %d (%.2f %%; after its first 2 s %.2f %%)",
                $y->[3] - $x->[3], $req, 100 * ($y->[3] - $x->[3]) / ($req || 1),
                100 * ($y->[3] - $z->[3]) / ($req2 || 1);
        }
        printf "| %d | %s | %s | %s | %s | %s |\n", $n, $run->{load} // '-',
            join(", ", map { "$_: $c{$_}" } sort keys %c) || '-',
            join(" | ", @g), join(" | ", @q), $run->{peak};

        # after each change: when every key's effective limit had reached
        # the new limit (within one probe: <= limit + 1 going down); the end
        # of the first 1 s window after the change above 85 % of the new
        # capacity; the end of the first one from which every 1 s window
        # (sliding by a step) to the phase's end is
        my $per = $run->{per};
        for my $p (@phases[1 .. $#phases]) {
            my ($a, $b, $l) = @$p;
            my $cap = $l * $unit;
            my $prev = $limit_of->($run, $a);
            my $t0 = $at->($run, $a)->[1];
            my ($eff, $first, $stays);
            for my $j ($a + 1 .. $b) {
                my $x = $at->($run, $j);
                next if $x->[6] eq '-';
                if ($l > $prev ? $x->[6] >= $l : $x->[7] <= $l + 1) {
                    $eff = $x->[1] - $t0;
                    last;
                }
            }
            for my $j ($a .. $b - $per) {
                if ($rate->($run, $j, $j + $per, 2) >= 0.85 * $cap) {
                    $first = $at->($run, $j + $per)->[1] - $t0;
                    last;
                }
            }
            for (my $j = $b - $per; $j >= $a; $j--) {
                last if $rate->($run, $j, $j + $per, 2) < 0.85 * $cap;
                $stays = $at->($run, $j + $per)->[1] - $t0;
            }
            push @rec, [$n, $prev, $l, $a * $run->{step}, $eff, $first, $stays];
        }
    }

    my $fmt = sub { defined $_[0] ? sprintf('%.2f s', $_[0]) : 'not in the phase' };
    print "\nAfter each change (times from the change; samples every $r0->{step} s):",
          " when every key's\neffective limit had reached the new limit (going",
          " down: at most one above it,\nas a probe may be under way); the end of the",
          " first 1 s window above 85 %\nof the new capacity (the target: within 5 s);",
          " the end of the first 1 s\nwindow from which every later 1 s window of the",
          " phase (sliding by\n$r0->{step} s) stays above 85 %.\n\n";
    print "| run | change | effective limits at the new limit | goodput back above 85 % | stays above 85 % from | target: back within 5 s |\n";
    print "|---|---|---|---|---|---|\n";
    for my $r (@rec) {
        my ($run, $from, $to, $c, $eff, $first, $stays) = @$r;
        printf "| %d | t = %g s, %s -> %s | %s | %s | %s | %s |\n", $run, $c, $from,
            $to, $fmt->($eff), $fmt->($first), $fmt->($stays),
            defined $first && $first <= 5 ? 'met' : 'MISSED';
    }
    print "\n";

    # the 1 s windows
    print "Each 1 s window: goodput in % of the capacity of the mock's limit then;\n",
          "upstream 429s in the window; the gateway's effective limits (min-max\n",
          "over the 8 keys) at its end.\n\n";
    print "| t s | limit | capacity /s | ",
        join(" | ", map { "run $_: goodput, 429s, effective" } 1 .. @runs), " |\n";
    print "|---" x (3 + @runs), "|\n";
    my $secs = int($r0->{last} / $r0->{per} + 1e-9);
    for my $w (0 .. $secs - 1) {
        my $per = $r0->{per};
        my $l = $limit_of->($r0, ($w + 1) * $per);
        my @cells;
        for my $run (@runs) {
            my ($a, $b) = ($w * $run->{per}, ($w + 1) * $run->{per});
            my ($x, $y) = ($at->($run, $a), $at->($run, $b));
            my $e = $y->[6] eq $y->[7] ? $y->[6] : "$y->[6]-$y->[7]";
            push @cells, sprintf "%.0f %%, %d, %s",
                100 * $rate->($run, $a, $b, 2) / ($l * $unit), $y->[3] - $x->[3], $e;
        }
        printf "| %d-%d | %s | %d | %s |\n", $w, $w + 1, $l, $l * $unit,
            join(" | ", @cells);
    }
}
