# 2026 December 7
#
# The author disclaims copyright to this source code.  In place of
# a legal notice, here is a blessing:
#
#    May you do good and not evil.
#    May you find forgiveness for yourself and forgive others.
#    May you share freely, never taking more than you give.
#
#***********************************************************************
#
# Procs shared by the tests of `quotactl report` (reportdata.test reads
# the page as written, report.test as Chromium renders it). Sourced after
# tester.tcl.
#
#   report_fixture FILE   a store made by the extension, with a pinned
#                         clock from 2026-01-20 to 2026-03-10 12:00 (keys
#                         in every state the report shows, see below)
#   report_standin FILE   adds events to FILE's quota_events and stand-in
#                         quota_grants and quota_draws tables (see there)
#   report ARGS           runs tool/quotactl --ext ... ARGS: {status output}
#   read_file FILE        the file's text (UTF-8)
#   html_tags HTML RE     every start tag matching RE, each as a dict of
#                         its attributes (entities decoded) with the tag
#                         name under "" and its index in HTML under "@"
#   html_unescape TEXT    &amp; &lt; &gt; &quot; &#39; decoded
#
set quotactl [file join $repo_root tool quotactl]
set report_now {2026-03-10 12:00:00}

# A key name 120 characters long with no space in it: the page must wrap
# it rather than grow wider than the window.
set report_long_key sk-[string repeat abcdefghij 11]-long9
# A key with the characters HTML escapes.
set report_html_key {html<b>&"x}

proc report {args} {
  set rc [catch {exec sh $::quotactl --ext $::quota_ext {*}$args 2>@1} out opts]
  if {$rc} {
    set ec [dict get $opts -errorcode]
    set status [expr {[lindex $ec 0] eq "CHILDSTATUS" ? [lindex $ec 2] : -1}]
    regsub {\n?child process exited abnormally$} $out {} out
    return [list $status $out]
  }
  list 0 $out
}

proc read_file {f} {
  set fd [open $f]
  fconfigure $fd -encoding utf-8
  set t [read $fd]
  close $fd
  return $t
}

proc html_unescape {t} {
  string map {&lt; < &gt; > &quot; \" &#39; ' &amp; &} $t
}

proc html_tags {html re} {
  set out [list]
  foreach {m} [regexp -all -inline -indices "<($re)\[\\s>/\]\[^>\]*>" $html] {
    lassign $m a b
    if {$b - $a < 1} continue
    set tag [string range $html $a $b]
    if {![regexp {^<([a-zA-Z0-9]+)} $tag -> name]} continue
    set d [dict create "" $name @ $a]
    foreach {- k v} [regexp -all -inline {([a-zA-Z_:][-a-zA-Z0-9_:.]*)="([^"]*)"} $tag] {
      dict set d $k [html_unescape $v]
    }
    lappend out $d
  }
  return $out
}

# The fixture. Busiest first (their charges every 20 minutes, and so the
# six usage charts, in this order): sk-month (a calendar month, under the
# uncapped key org), sk-anchor (monthly from the 31st at 10:00), sk-week
# (ISO weeks; retention forever), sk-year (yearly from 2024-02-29 06:00),
# sk-day (consume with request ids; retention 30 days), sk-hour (reserve
# and settle). In March, quieter keys in each state of the room list:
# sk-out (used = cap), sk-zero (cap 0), sk-debt (charged past its cap),
# the long key (90%), sk-near (85%), sk-roll (60% of a rolling hour), the
# HTML key (50%), sk-ok (20% used, 10% held). sk-gone was charged in
# January and deleted. The table keeps ledger rows 7 days.
proc report_fixture {file} {
  forcedelete $file $file-wal $file-shm $file-journal
  sqlite3 fx $file
  load_quota fx
  set L $::report_long_key
  set H $::report_html_key
  fx eval {
    SELECT quota_clock('2026-01-20 00:00:00');
    CREATE VIRTUAL TABLE quota USING quota(retention = '7 days', hold_ttl = '1 hour');
    INSERT INTO quota(key, cap, period) VALUES ('org', NULL, 'month');
    INSERT INTO quota(key, cap, period, parent) VALUES ('sk-month', 100000, 'month', 'org');
    INSERT INTO quota(key, cap, period, anchor) VALUES ('sk-anchor', 100000, 'month', '2026-01-31 10:00:00');
    INSERT INTO quota(key, cap, period, retention) VALUES ('sk-week', 100000, 'week', 'forever');
    INSERT INTO quota(key, cap, period, anchor) VALUES ('sk-year', 1000000, 'year', '2024-02-29 06:00:00');
    INSERT INTO quota(key, cap, period, retention) VALUES ('sk-day', 10000, 'day', '30 days');
    INSERT INTO quota(key, cap, period) VALUES ('sk-hour', 5000, 'hour');
    INSERT INTO quota(key, cap, period) VALUES
      ('sk-out', 1000, 'month'), ('sk-near', 1000, 'month'), ('sk-ok', 1000, 'month'),
      ($L, 1000, 'month'), ($H, 1000, 'month');
    INSERT INTO quota(key, cap, period) VALUES ('sk-debt', 100, 'lifetime'), ('sk-zero', 0, 'lifetime');
    INSERT INTO quota(key, cap, period) VALUES ('sk-roll', 500, 'rolling 1 hours');
    INSERT INTO quota(key, cap) VALUES ('sk-gone', NULL);
    SELECT quota_clock('2026-01-21 08:00:00');
    SELECT quota_record('sk-gone', 70), quota_record('sk-gone', 30);
    SELECT quota_clock('2026-01-22 08:00:00');
    DELETE FROM quota WHERE key = 'sk-gone';
  }
  set t0 [clock scan {2026-01-20 00:00:00} -gmt 1]
  set t1 [clock scan {2026-03-10 11:50:00} -gmt 1]
  fx eval BEGIN
  for {set i 0; set t $t0} {$t <= $t1} {incr i; incr t 1200} {
    fx eval {SELECT quota_clock(datetime($t, 'unixepoch'))}
    fx eval {
      SELECT quota_record('sk-month', 30 + $i % 7), quota_record('sk-anchor', 25),
             quota_record('sk-week', 20), quota_record('sk-year', 15 + $i % 3);
      SELECT quota_consume('sk-day', 12, 'req-' || $i);
    }
    if {$i % 3 == 0} {
      set h [fx onecolumn {SELECT quota_reserve('sk-hour', 40)}]
      fx eval {SELECT quota_settle($h, 30)}
    }
    if {$i % 50 == 0} {
      set h [fx onecolumn {SELECT quota_reserve('sk-week', 5)}]
      fx eval {SELECT quota_release($h)}
    }
    if {$i % 500 == 0} { fx eval {COMMIT; BEGIN} }
  }
  fx eval COMMIT
  fx eval {
    SELECT quota_clock('2026-03-05 09:00:00');
    SELECT quota_consume('sk-out', 600), quota_consume('sk-near', 850), quota_consume('sk-ok', 200);
    SELECT quota_consume($L, 900), quota_consume($H, 500);
    SELECT quota_record('sk-debt', 150);
    SELECT quota_clock('2026-03-08 09:00:00');
    SELECT quota_consume('sk-out', 400);
    SELECT quota_clock('2026-03-10 11:30:00');
    SELECT quota_consume('sk-roll', 300);
    SELECT quota_reserve('sk-ok', 100, 'held-1', 86400);
  }
  fx close
}

# Events, and stand-ins until the credits of sqlite-quota are built. The
# events are rows of the extension's own quota_events table, written here
# at chosen times (events.test checks what the extension writes; reportdata
# 5.9 reports events the extension wrote itself). The grants and draws go
# into the store's own quota_grants and quota_draws, at chosen times too,
# as quota_grant and quota_void would have left them (voided: the units
# the void took away), with each key's count of open grants in
# quota_keyconf, so that the quota table's credits column agrees
# (test/credits.test checks what the extension writes).
proc report_standin {file} {
  sqlite3 sx $file
  sx eval {
    INSERT INTO quota_events(key, at, kind, detail, used, cap, period_start) VALUES
      ('sk-out', unixepoch('2026-03-05 09:00:00'), 'threshold', '50%', 600, 1000, unixepoch('2026-03-01')),
      ('sk-out', unixepoch('2026-03-08 09:00:00'), 'threshold', '80%', 1000, 1000, unixepoch('2026-03-01')),
      ('sk-out', unixepoch('2026-03-08 09:00:00'), 'exhausted', NULL, 1000, 1000, unixepoch('2026-03-01')),
      ('sk-near', unixepoch('2026-03-05 09:00:00'), 'threshold', '80%', 850, 1000, unixepoch('2026-03-01')),
      ('sk-month', unixepoch('2026-02-20 10:00:00'), 'shadow_denied', NULL, 100000, 100000, unixepoch('2026-02-01')),
      ('sk-month', unixepoch('2026-02-21 10:00:00'), 'exhausted', NULL, 100000, 100000, unixepoch('2026-02-01')),
      ('sk-month', unixepoch('2026-01-02 10:00:00'), 'exhausted', NULL, 100000, 100000, unixepoch('2026-01-01'));
    INSERT INTO quota_grants(id, key, amount, remaining, priority, created, expires, voided) VALUES
      (1, 'sk-out', 500, 200, 0, unixepoch('2026-03-01'), NULL, NULL),
      (2, 'sk-out', 300, 300, 0, unixepoch('2026-02-01'), unixepoch('2026-03-01'), NULL),
      (3, 'sk-near', 1000, 0, 0, unixepoch('2026-03-02'), NULL, 750),
      (4, 'sk-near', 100, 100, 0, unixepoch('2026-03-02'), unixepoch('2026-04-01'), NULL);
    INSERT INTO quota_draws VALUES (1, 1, 300), (2, 3, 250);
    INSERT INTO quota_keyconf(id, grants)
      SELECT k.id, count(*) FROM quota_keys AS k JOIN quota_grants AS g ON g.key=k.key
       WHERE g.remaining>0 AND g.voided IS NULL GROUP BY k.id
      ON CONFLICT(id) DO UPDATE SET grants=excluded.grants;
  }
  sx close
}
