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
# Writes the hand-made seeds of the fuzz corpora:
#
#     tclsh test/fuzz/seeds.tcl        (from the repository root)
#
# into test/fuzz/corpus/<target>/seed-<name>. The rest of each corpus is
# what fuzzing runs found (libFuzzer's file names, the SHA-1 of the input),
# merged with -merge=1 (make fuzz-merge). Each seed is a small program in
# the byte language its target reads (see the comments at the top of
# test/fuzz/fuzz_*.c); to see one as SQL:
#
#     FUZZ_TRACE=1 build/fuzz_replay_fuzz_ops test/fuzz/corpus/fuzz_ops/seed-NAME
#
# Keep the encoders below in step with the parsers in the targets.
#

set root [file dirname [file dirname [file dirname [file normalize [info script]]]]]

proc write_seed {target name bytes} {
  global root
  set dir [file join $root test fuzz corpus $target]
  file mkdir $dir
  set f [open [file join $dir seed-$name] wb]
  puts -nonewline $f [binary format c* $bytes]
  close $f
}

# A deterministic byte stream, for seeds that want "anything".
set ::lcg 12345
proc rnd {n} {
  set out {}
  for {set i 0} {$i < $n} {incr i} {
    set ::lcg [expr {($::lcg * 1103515245 + 12345) % 2147483648}]
    lappend out [expr {($::lcg >> 16) & 255}]
  }
  return $out
}

#-------------------------------------------------------------------------
# fuzz_ops: [start-time option] then one operation after another.
# Slots: 0 p, 1 q, 2 k0, 3 k1, 4 k2, 5 k3.  Amount bytes below 200 are the
# amount mod 12; 250 is INT64_MAX, 251 INT64_MAX-1.
#
proc ops_reserve {slot amount {req -1} {ttl 0} {mode 0}} {
  set b [list 0 $slot $amount]
  if {$req < 0} { lappend b 1 } else { lappend b 0 $req }
  lappend b $mode $ttl                ;# ttl: 0 table's, 3 1s, 4 5s, 5 30s, 6 10min, 7 2h
  return $b
}
proc ops_consume {slot amount {req -1} {mode 0} {meta 0}} {
  set b [list 3 $slot $amount]
  if {$req < 0} { lappend b 1 } else { lappend b 0 $req }
  lappend b $mode
  if {$req >= 0} { lappend b $meta }
  return $b
}
proc ops_record {slot amount {req -1} {mode 0}} {
  set b [list 6 $slot $amount]
  if {$req < 0} { lappend b 1 } else { lappend b 0 $req }
  lappend b $mode
  return $b
}
# hold: the Nth most recent hold the model knows (0 = newest), or 200+id-1
proc ops_settle  {hold amount {mode 0}} { list 7 $hold $amount $mode 1 }
proc ops_release {hold {mode 0}} { list 10 $hold $mode }
proc ops_check   {slot amount} { list 11 $slot $amount }
proc ops_purge   {} { list 12 }
proc ops_tick    {secs} { list 13 [expr {$secs - 1}] }
# steps: 0 9s 1 10s 2 11s 3 29s 4 30s 5 31s 6 59s 7 60s 8 61s 9 899s 10 900s
#        11 901s 12 1h 13 1d 14 7d 15 31d 16 366d
proc ops_jump    {i} { list 14 $i }
proc ops_back    {i} { list 15 $i }       ;# 0 1s 1 30s 2 1h 3 1d
proc ops_cap     {slot i} { list 16 $slot $i }   ;# NULL 0 1 3 5 10 20 50 100 1000
proc ops_used    {slot v} { list 17 $slot $v }   ;# <160: 0, else v%20
proc ops_period  {slot i {anchor 0}} { list 18 $slot $i $anchor }
proc ops_parent  {slot p} { list 19 $slot [expr {$p + 1}] }   ;# p -1: none
proc ops_delete  {slot} { list 20 $slot }
proc ops_insert  {slot parent cap period {used 0}} {
  list 21 $slot [expr {$parent + 1}] $cap $used $period
}
proc ops_begin    {} { list 22 0 1 }
proc ops_beginimm {} { list 22 0 0 }
proc ops_commit   {} { list 22 1 }
proc ops_rollback {} { list 22 2 }
proc ops_save     {} { list 22 3 }
proc ops_release_sp {} { list 22 4 }
proc ops_rollback_to {} { list 22 5 }

proc ops_seed {name start opt args} {
  set b [list $start [expr {$opt == 0 ? 0 : 191 + $opt}]]
  foreach op $args { lappend b {*}$op }
  write_seed fuzz_ops $name $b
}

ops_seed basic 0 0 \
  [ops_reserve 2 5] [ops_settle 0 3] [ops_consume 3 2] [ops_reserve 3 4] \
  [ops_release 0] [ops_check 0 11] [ops_consume 0 11]
ops_seed idempotency 0 0 \
  [ops_consume 4 1 0] [ops_consume 4 1 0] [ops_consume 4 2 0] \
  [ops_reserve 4 1 0] [ops_record 4 1 1] [ops_record 4 1 1] \
  [ops_reserve 2 2 2] [ops_reserve 2 2 2] [ops_settle 0 1] [ops_reserve 2 2 2]
ops_seed idem_window 0 2 \
  [ops_reserve 2 2 1] [ops_settle 0 2] [ops_jump 8] [ops_purge] \
  [ops_reserve 2 2 1] [ops_settle 1 5] [ops_jump 16] [ops_purge] [ops_settle 1 5]
ops_seed expiry 0 0 \
  [ops_reserve 2 2 -1 5] [ops_reserve 2 3] [ops_tick 31] [ops_check 2 9] \
  [ops_settle 1 2] [ops_release 0] [ops_jump 10] [ops_settle 0 4] [ops_purge]
ops_seed ttl_lanes 1 1 \
  [ops_reserve 0 1 -1 7] [ops_reserve 1 1] [ops_reserve 2 1 -1 3] \
  [ops_reserve 3 1] [ops_back 1] [ops_reserve 4 1] [ops_jump 4] [ops_check 0 50] \
  [ops_jump 12] [ops_release 2] [ops_purge]
ops_seed rolling 0 0 \
  [ops_consume 3 9] [ops_tick 3] [ops_consume 3 9] [ops_consume 3 9] \
  [ops_tick 7] [ops_consume 3 9] [ops_check 3 11] [ops_tick 4] [ops_consume 3 11] \
  [ops_consume 1 11] [ops_jump 7] [ops_consume 1 11]
ops_seed rollover 3 0 \
  [ops_consume 2 10] [ops_consume 2 1] [ops_tick 1] [ops_consume 2 1] \
  [ops_consume 0 11] [ops_jump 15] [ops_consume 0 11] [ops_reserve 5 4] \
  [ops_jump 12] [ops_settle 0 4]
ops_seed leapday 1 0 \
  [ops_period 0 5 2] [ops_consume 0 9] [ops_tick 31] [ops_consume 0 9] \
  [ops_period 2 4 3] [ops_consume 2 9] [ops_jump 13] [ops_consume 2 9]
ops_seed epoch 2 0 \
  [ops_consume 1 7] [ops_consume 5 3] [ops_tick 10] [ops_consume 1 7] \
  [ops_jump 7] [ops_consume 1 9] [ops_check 1 11]
ops_seed year0 4 0 \
  [ops_consume 0 5] [ops_reserve 3 2] [ops_period 4 3] [ops_consume 4 2] \
  [ops_back 3] [ops_consume 2 1]
ops_seed year9999 5 0 \
  [ops_consume 0 5] [ops_jump 12] [ops_consume 0 5] [ops_jump 16] \
  [ops_reserve 2 1 -1 7] [ops_settle 0 1]
ops_seed txn 0 0 \
  [ops_begin] [ops_consume 2 3] [ops_reserve 3 2] [ops_rollback] \
  [ops_beginimm] [ops_save] [ops_reserve 2 4 1] [ops_rollback_to] \
  [ops_reserve 2 4 1] [ops_save] [ops_consume 4 1] [ops_release_sp] [ops_commit]
ops_seed txn_sweep 0 1 \
  [ops_reserve 2 2] [ops_jump 5] [ops_begin] [ops_consume 2 1] [ops_rollback] \
  [ops_check 2 9] [ops_consume 2 8]
ops_seed modes 0 0 \
  [ops_consume 2 2 -1 220] [ops_reserve 2 2 -1 0 220] [ops_settle 0 1 220] \
  [ops_consume 2 1 -1 250] [ops_begin] [ops_consume 2 1 -1 250] \
  [ops_reserve 3 1 -1 0 220] [ops_commit]
ops_seed admin 0 0 \
  [ops_cap 2 1] [ops_reserve 2 1] [ops_cap 2 5] [ops_reserve 2 4] \
  [ops_used 2 165] [ops_parent 3 1] [ops_parent 0 2] [ops_delete 0] \
  [ops_delete 4] [ops_insert 4 0 6 7 205] [ops_consume 4 3] [ops_delete 5] \
  [ops_insert 5 4 4 1] [ops_consume 5 5] [ops_period 3 0] [ops_period 2 6]
ops_seed reuse_name 0 0 \
  [ops_consume 5 3] [ops_delete 5] [ops_insert 5 0 6 2] [ops_consume 5 2] \
  [ops_record 5 4 1] [ops_delete 5] [ops_insert 5 2 3 3] [ops_record 5 4 1]
ops_seed orphan 0 0 \
  [ops_reserve 5 3] [ops_reserve 5 1 -1 5] [ops_delete 5] [ops_settle 0 1] \
  [ops_release 1] [ops_check 2 9] [ops_insert 5 2 5 1] [ops_settle 1 1]
ops_seed extremes 0 0 \
  [ops_record 4 250] [ops_consume 4 1] [ops_record 4 1] [ops_check 4 250] \
  [ops_reserve 1 251] [ops_record 3 250] [ops_check 3 1] [ops_consume 2 252] \
  [ops_cap 2 0] [ops_check 2 0] [ops_reserve 2 0] [ops_settle 0 250]
ops_seed over_cap 0 0 \
  [ops_reserve 2 5] [ops_reserve 2 5] [ops_settle 1 8] [ops_check 2 1] \
  [ops_record 3 30] [ops_consume 0 1] [ops_check 0 1]
ops_seed clock_back 0 0 \
  [ops_consume 3 5] [ops_back 1] [ops_consume 3 5] [ops_tick 20] \
  [ops_consume 3 5] [ops_back 3] [ops_consume 2 3] [ops_reserve 2 1 -1 4] \
  [ops_jump 13] [ops_back 2] [ops_release 0]

#-------------------------------------------------------------------------
# fuzz_args: [table option byte] then statements. Functions (op 0):
# 0 reserve 1 settle 2 release 3 consume 4 record 5 check 6 status 7 purge
# 8 integrity 9 clock 10 version 11 first_of_next_month.  An argument is a
# byte c: odd = a plausible value of its kind chosen by c>>1, even = the
# hostile value that the following bytes pick (see fzValue).
#
proc args_call {fn nextra args} {
  return [list 0 $fn $nextra {*}$args]
}
proc args_seed {name opt args} {
  set b [list $opt]
  foreach op $args { lappend b {*}$op }
  write_seed fuzz_args $name $b
}
# plausible key / amount / hold / ... : the byte 2*v+1
proc P {v} { expr {2*$v + 1} }

args_seed calls 0 \
  [args_call 0 2 [P 1] [P 3] [P 0] [P 1]] \
  [args_call 1 1 [P 3] [P 2] [P 0]] \
  [args_call 2 0 [P 2]] \
  [args_call 3 2 [P 2] [P 1] [P 1] [P 0]] \
  [args_call 4 2 [P 3] [P 5] [P 2] [P 0]] \
  [args_call 5 1 [P 1] [P 4]] \
  [args_call 6 1 [P 0] [P 90]] \
  [args_call 7 0] [args_call 8 0] [args_call 10 0] \
  [args_call 9 1 [P 50]] [args_call 11 3 [P 50] [P 70] [P 71]]
# hostile amounts: integer extremes (13 is the index of fzValue's case 2)
args_seed amounts 0 \
  [args_call 3 0 [P 1] 0 2 9] [args_call 3 0 [P 1] 0 2 11] \
  [args_call 4 0 [P 1] 0 2 9] [args_call 4 0 [P 1] 0 4 9] \
  [args_call 0 0 [P 1] 0 4 2] [args_call 1 0 [P 1] 0 4 5] \
  [args_call 5 1 [P 2] 0 3 255 255 255 255 255 255 255 255] \
  [args_call 6 1 [P 4] 0 5 127 240 0 0 0 0 0 0]
args_seed texts 0 \
  [args_call 0 2 [P 1] [P 1] [P 2] 0 6 30] \
  [args_call 0 2 [P 1] [P 1] [P 3] 0 10 9 3 0] \
  [args_call 9 1 0 8 12 50 48 50 54 45 48 50 45 51 48 48 48] \
  [args_call 11 5 [P 60] [P 67] [P 68] [P 69] [P 70] [P 71]] \
  [args_call 3 2 0 9 5 0 1 2 3 255 [P 1] [P 1] 0 8 4 255 254 0 65]
args_seed vtab_writes 0 \
  [list 6 0 7 0 [P 5] [P 3] [P 7]] \
  [list 6 0 127 0 [P 6] [P 4] [P 40] [P 60] [P 0] [P 3] [P 2]] \
  [list 7 0 2 1 [P 0] [P 2] [P 1]] [list 8 0 64 1 [P 3] [P 1] [P 2]] \
  [list 9 1 [P 2]] [list 9 0 [P 3]] \
  [list 10 0] [list 10 1 [P 1]] [list 10 3 [P 6]] [list 10 4 0 0]
args_seed txn_modes 0 \
  [list 11 0] [args_call 3 0 [P 1] [P 2]] [list 11 4] [args_call 0 0 [P 2] [P 1]] \
  [list 11 6] [list 11 2] [list 12 3 0 [P 1] [P 1]] [list 13 0 0 [P 1] [P 1]] \
  [list 11 3]
args_seed options 200 0 [P 1] 2 [P 2] 4 0 6 33 \
  [args_call 0 0 [P 1] [P 1]] [args_call 7 0]
args_seed options2 255 2 0 6 34 4 0 6 22 1 0 10 1 4 1 \
  [args_call 0 2 [P 1] [P 1] [P 0] [P 1]]
for {set i 0} {$i < 6} {incr i} {
  args_seed random$i [expr {$i * 50}] [rnd [expr {64 + 32*$i}]]
}

#-------------------------------------------------------------------------
# fuzz_store: damaging statements (a byte other than 255, then the table:
# 0 keys 1 holds 2 expiry 3 ledger 4 requests 5 window 6 meta, then the
# kind: <10 UPDATE, <13 DELETE, <15 INSERT, 15 DROP), a 255, then the
# battery's option byte and the second clock.
#
proc store_seed {name damage {m 0} {clock 2}} {
  set b {}
  foreach d $damage { lappend b 1 {*}$d }
  lappend b 255 $m $clock
  write_seed fuzz_store $name $b
}
# UPDATE quota_<t> SET <col i> = <near value v> WHERE <row w>
proc upd {t col v w} { list $t 0 1 $col 1 $v $w }
proc del {t w} { list $t 10 $w }
proc drop {t} { list $t 15 0 }

store_seed intact {} 0 0
store_seed key_kind   [list [upd 0 4 8 3]] 1 1
store_seed key_len    [list [upd 0 5 21 3]] 2 3
store_seed key_used   [list [upd 0 9 0 3]] 3 2
store_seed key_cap    [list [upd 0 2 22 2]] 4 4
store_seed key_cycle  [list [upd 0 7 3 1]] 5 1
store_seed key_parent [list [upd 0 7 11 3]] 6 2
store_seed key_anchor [list [upd 0 6 21 7]] 7 3
store_seed key_pstart [list [upd 0 11 22 2]] 8 5
store_seed key_oldest [list [upd 0 12 0 3]] 9 1
store_seed key_text   [list [upd 0 1 30 3]] 10 0
store_seed hold_amount [list [upd 1 2 22 2]] 11 1
store_seed hold_state [list [upd 1 4 11 1]] 12 3
store_seed hold_expires [list [upd 1 3 23 2]] 13 1
store_seed hold_keyid [list [upd 1 1 11 4]] 14 2
store_seed hold_lane  [list [upd 1 8 3 1]] 15 1
store_seed expiry_gone [list [del 2 0]] 16 1
store_seed window_amount [list [upd 5 2 22 3]] 17 1
store_seed window_sec [list [upd 5 1 21 3]] 18 1
store_seed window_gone [list [del 5 0]] 19 1
store_seed meta_swept [list [upd 6 1 21 4]] 20 1
store_seed meta_sweepid [list [upd 6 1 0 2]] 21 1
store_seed meta_gone  [list [del 6 1]] 22 2
store_seed ledger_at  [list [upd 3 3 22 0]] 23 3
store_seed request_at [list [upd 4 6 22 0]] 24 1
store_seed request_op [list [upd 4 3 11 0]] 25 1
store_seed drop_holds [list [drop 1]] 26 1
store_seed drop_keys  [list [drop 0]] 27 1
store_seed many [list [upd 0 9 21 3] [upd 1 2 0 0] [del 2 0] [upd 5 2 0 0] \
                      [upd 6 1 12 1] [upd 0 10 21 0]] 28 3
for {set i 0} {$i < 6} {incr i} {
  write_seed fuzz_store random$i [rnd [expr {40 + 20*$i}]]
}
