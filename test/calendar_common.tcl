# 2026 January 1
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
# Procs shared by calendar.test and anchor.test (sourced after tester.tcl).
#
# The expected bounds of a period are computed here with Tcl's own "clock"
# command in -gmt mode, independently of ext/calendar.c:
#   - without an anchor: the calendar hour, day, ISO week (Monday 00:00),
#     month and year holding T;
#   - with an anchor: the sequence start(k) = ANCHOR + k periods, where
#     "clock add ANCHOR k months" clamps the day of month to the length of
#     the target month exactly as a billing anchor must (Jan 31 + 1 month =
#     Feb 28, + 2 months = Mar 31), and "k years" moves Feb 29 to Feb 28 in
#     common years.
#
#   ts TEXT                       'YYYY-MM-DD HH:MM:SS' (UTC) -> unix seconds
#   fmt T                         unix seconds -> 'YYYY-MM-DD HH:MM:SS'
#   cal_bounds KIND ANCHOR T      {start end} of the period holding T
#   cal_boundaries KIND ANCHOR FROM TO
#                                 the period starts in [FROM, TO]
#   cal_around TIMES              each time T as T-1, T, T+1, sorted
#   cal_walk PREFIX KEYS TIMES    the rollover walk, see below
#   cal_hold_cross PREFIX KEY KIND ANCHOR B
#                                 holds and charges across boundary B
#   fresh_db                      a new test.db with the table quota
#

# A new test.db (no fsync: speed only) with "CREATE VIRTUAL TABLE quota
# USING quota", and no key marked exhausted by cal_walk.
proc fresh_db {} {
  reset_db
  db eval {PRAGMA synchronous=OFF; PRAGMA journal_mode=MEMORY}
  db eval {CREATE VIRTUAL TABLE quota USING quota}
  array unset ::cal_exhausted
}

# The cap of every key of cal_walk (written as a literal 10 in its SQL:
# a Tcl variable holding "10" would bind as text).
set cal_cap 10

proc ts {s} {
  clock scan $s -format {%Y-%m-%d %H:%M:%S} -gmt 1
}
proc fmt {t} {
  clock format $t -format {%Y-%m-%d %H:%M:%S} -gmt 1
}

proc cal_day_start {t} {
  clock scan [clock format $t -format %Y-%m-%d -gmt 1] -format %Y-%m-%d -gmt 1
}

proc cal_bounds {kind anchor t} {
  if {$anchor eq ""} {
    switch -- $kind {
      hour {
        set s [clock scan [clock format $t -format {%Y-%m-%d %H} -gmt 1] \
                   -format {%Y-%m-%d %H} -gmt 1]
        set e [clock add $s 1 hour -gmt 1]
      }
      day {
        set s [cal_day_start $t]
        set e [clock add $s 1 day -gmt 1]
      }
      week {
        # %u: ISO day of the week, 1 = Monday.
        set u [clock format $t -format %u -gmt 1]
        set s [clock add [cal_day_start $t] [expr {1 - $u}] days -gmt 1]
        set e [clock add $s 7 days -gmt 1]
      }
      month {
        set s [clock scan [clock format $t -format %Y-%m-01 -gmt 1] \
                   -format %Y-%m-%d -gmt 1]
        set e [clock add $s 1 month -gmt 1]
      }
      year {
        set s [clock scan [clock format $t -format %Y-01-01 -gmt 1] \
                   -format %Y-%m-%d -gmt 1]
        set e [clock add $s 1 year -gmt 1]
      }
      default { error "cal_bounds: bad kind $kind" }
    }
    return [list $s $e]
  }
  set a [ts $anchor]
  switch -- $kind {
    hour  { set unit hours }
    day   { set unit days }
    week  { set unit weeks }
    month { set unit months }
    year  { set unit years }
    default { error "cal_bounds: bad kind $kind" }
  }
  # A first guess at k from the calendar, then step until
  # start(k) <= t < start(k+1).
  scan [clock format $a -format {%Y %m} -gmt 1] {%d %d} ay am
  scan [clock format $t -format {%Y %m} -gmt 1] {%d %d} ty tm
  switch -- $kind {
    month   { set k [expr {($ty-$ay)*12 + ($tm-$am)}] }
    year    { set k [expr {$ty-$ay}] }
    default {
      set len [dict get {hours 3600 days 86400 weeks 604800} $unit]
      set k [expr {($t-$a)/$len}]
    }
  }
  while {[clock add $a $k $unit -gmt 1] > $t} { incr k -1 }
  while {[clock add $a [expr {$k+1}] $unit -gmt 1] <= $t} { incr k }
  list [clock add $a $k $unit -gmt 1] [clock add $a [expr {$k+1}] $unit -gmt 1]
}

# The starts of the periods of KIND/ANCHOR in [FROM, TO] (unix seconds).
proc cal_boundaries {kind anchor from to} {
  set res [list]
  set t $from
  while {$t <= $to} {
    lassign [cal_bounds $kind $anchor $t] s e
    if {$s >= $from} { lappend res $s }
    set t $e
  }
  return $res
}

proc cal_around {times} {
  set res [list]
  foreach t $times {
    lappend res [expr {$t-1}] $t [expr {$t+1}]
  }
  lsort -integer -unique $res
}

# cal_walk PREFIX KEYS TIMES
#
#   KEYS is a list of {key kind anchor}; each key exists with cap $cal_cap.
#   TIMES is an ascending list of unix seconds.  At each time the clock is
#   pinned and, for each key:
#     PREFIX.I.KEY.1  the table shows the period holding the time
#                     (period_start, resets_at) and used: $cal_cap if the key
#                     was exhausted earlier in this same period, else 0 (the
#                     rollover, on the first read after the end); retry_after
#                     is the seconds to resets_at when exhausted, else NULL.
#     PREFIX.I.KEY.2  when it rolled over: the stored row still holds the old
#                     period (a read does not write; rollover happens on use).
#     PREFIX.I.KEY.3  quota_consume takes what is left of the cap.
#     PREFIX.I.KEY.4  exhausted: used, remaining, retry_after (= seconds to
#                     resets_at, at least 1), quota_check, quota_status.
#     PREFIX.I.KEY.5  the stored row now holds the new period and its usage.
#
proc cal_walk {prefix keys times} {
  global cal_cap cal_exhausted
  set i 0
  foreach t $times {
    incr i
    set now [fmt $t]
    db eval {SELECT quota_clock($now)}
    foreach spec $keys {
      lassign $spec key kind anchor
      lassign [cal_bounds $kind $anchor $t] s e
      set S [fmt $s]
      set E [fmt $e]
      set prior ""
      if {[info exists cal_exhausted($key)]} { set prior $cal_exhausted($key) }
      set full [expr {$prior eq $s}]
      set retry [expr {max(1, $e - $t)}]
      do_test $prefix.$i.$key.1 {
        db eval {SELECT used, period_start, resets_at, retry_after
                 FROM quota WHERE key=$key}
      } [list [expr {$full ? $cal_cap : 0}] $S $E [expr {$full ? $retry : ""}]]
      if {$prior ne "" && !$full} {
        do_test $prefix.$i.$key.2 {
          db eval {SELECT pstart, used FROM quota_keys WHERE key=$key}
        } [list $prior $cal_cap]
      }
      if {!$full} {
        do_test $prefix.$i.$key.3 {
          db eval {SELECT quota_consume($key, 10) > 0}
        } 1
      }
      set status [format {{"key":"%s","allowed":false,"code":"rate_limit_exceeded","cap":%d,"used":%d,"reserved":0,"remaining":0,"resets_at":"%s","retry_after":%d,"limited_by":"%s","credits":0,"would_deny":true}} $key $cal_cap $cal_cap $E $retry $key]
      do_test $prefix.$i.$key.4 {
        concat [db eval {SELECT used, remaining, retry_after, period_start,
                                resets_at FROM quota WHERE key=$key}] \
               [db eval {SELECT quota_check($key)}] \
               [db eval {SELECT quota_status($key)}]
      } [list $cal_cap 0 $retry $S $E 0 $status]
      do_test $prefix.$i.$key.5 {
        db eval {SELECT pstart, used FROM quota_keys WHERE key=$key}
      } [list $s $cal_cap]
      set cal_exhausted($key) $s
    }
  }
}

# cal_hold_cross PREFIX KEY KIND ANCHOR B
#
#   B is the start of a period of KIND/ANCHOR.  KEY is created (cap 10) at
#   B-1, which must be later than any time used before on this database.
#     B-1  consume 4; reserve 3 (h1) and 2 (h2) with a ttl of an hour and
#          1 (h3) with a ttl of 1 second, so h3 expires at B: the key is full.
#     B    used rolled over to 0; h1 and h2 survive (reserved 5), h3 has
#          expired; settle h1 for 3: it belongs to the new period.
#     B+1  settle h2 for 4 (above its hold) and h3 for 1 (late): both
#          charge the new period.
#   The ledger keeps each charge at the second it was made.
#
proc cal_hold_cross {prefix key kind anchor B} {
  lassign [cal_bounds $kind $anchor [expr {$B-1}]] s0 e0
  lassign [cal_bounds $kind $anchor $B] s1 e1
  if {$e0 != $B || $s1 != $B} { error "cal_hold_cross: $B is not a boundary" }
  set t0 [fmt [expr {$B-1}]]
  set t1 [fmt $B]
  set t2 [fmt [expr {$B+1}]]
  db eval {SELECT quota_clock($t0)}
  do_test $prefix.1 {
    db eval {
      INSERT INTO quota(key, cap, period, anchor) VALUES($key, 10, $kind, nullif($anchor, ''));
    }
    set ::h1 [db one {SELECT quota_reserve($key, 3, NULL, 3600)}]
    set ::h2 [db one {SELECT quota_reserve($key, 2, NULL, 3600)}]
    set ::h3 [db one {SELECT quota_reserve($key, 1, NULL, 1)}]
    concat [db eval {SELECT quota_consume($key, 4) > 0}] \
           [expr {$::h1 ne "" && $::h2 ne "" && $::h3 ne ""}] \
           [db eval {SELECT used, reserved, remaining, period_start, resets_at,
                            retry_after FROM quota WHERE key=$key}]
  } [list 1 1 4 6 0 [fmt $s0] [fmt $B] 1]
  db eval {SELECT quota_clock($t1)}
  do_test $prefix.2 {
    db eval {SELECT used, reserved, remaining, period_start, resets_at,
                    retry_after FROM quota WHERE key=$key}
  } [list 0 5 5 $t1 [fmt $e1] {}]
  do_test $prefix.3 {
    concat [db eval {SELECT quota_settle($::h1, 3)}] \
           [db eval {SELECT used, reserved, remaining, period_start
                     FROM quota WHERE key=$key}]
  } [list 3 3 2 5 $t1]
  db eval {SELECT quota_clock($t2)}
  do_test $prefix.4 {
    concat [db eval {SELECT quota_settle($::h2, 4)}] \
           [db eval {SELECT quota_settle($::h3, 1)}] \
           [db eval {SELECT used, reserved, remaining, period_start, resets_at
                     FROM quota WHERE key=$key}]
  } [list 4 1 8 0 2 $t1 [fmt $e1]]
  do_test $prefix.5 {
    db eval {SELECT amount, at - $B, hold_id IS NOT NULL, over, late
             FROM quota_ledger WHERE key=$key ORDER BY id}
  } {4 -1 0 0 0 3 0 1 0 0 4 1 1 0 0 1 1 1 0 1}
}
