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
# A minimal SQLite-style test harness for sqlite-quota, written on the
# Tcl "sqlite3" package (Debian: libsqlite3-tcl) rather than on SQLite's
# testfixture.  It is modelled on SQLite's own test/tester.tcl, keeps its
# names and conventions, and adds what a loadable extension needs.
#
# A TEST FILE looks like this:
#
#     set testdir [file dirname $argv0]
#     source $testdir/tester.tcl
#     set testprefix reserve
#
#     do_execsql_test 1.0 {
#       CREATE VIRTUAL TABLE quota USING quota;
#       INSERT INTO quota(key, cap) VALUES('k', 10);
#       SELECT quota_consume('k', 4);
#     } {1}
#     do_catchsql_test 1.1 {
#       SELECT quota_consume('k', -1);
#     } {1 {quota_consume: amount must be a non-negative integer}}
#     reset_db
#     ...
#     finish_test
#
# Run one file with "tclsh test/NAME.test" from the repository root, or
# every file with "tclsh test/all.tcl" (see all.tcl).
#
# WHAT SOURCING THIS FILE DOES
#
#   * Sets $testdir to the absolute path of the test/ directory, $repo_root
#     to the repository root, $build_dir to <root>/build and $quota_ext to
#     the extension without its suffix (<root>/quota; SQLite adds ".so").
#     The environment variable QUOTA_EXT overrides $quota_ext, and
#     QUOTA_BUILD overrides $build_dir (where the C drivers are).
#     $driver_sqlite is the SQLite version those drivers must report: by
#     default the version of the library this tclsh uses (the system
#     libsqlite3 that build/ links); test/newest.test changes both.
#   * Creates an empty scratch directory build/testdir/<file-rootname>/ and
#     cd's into it, so that test files can run in parallel without sharing a
#     test.db.  Paths in tests are relative to it.  It is kept after the run
#     for post-mortems and wiped when the file runs again.
#   * Opens database handle "db" on ./test.db (see reset_db), loading the
#     quota extension into it unless $quota_autoload is 0.  A file that
#     does not need the extension sets "set quota_autoload 0" BEFORE it
#     sources tester.tcl.
#
# PROCS (one-line usage; details at each proc)
#
#   do_test NAME SCRIPT EXPECTED      run SCRIPT in the caller, compare result
#   do_execsql_test NAME SQL ?RES?    SQL on db, compare the flat result list
#   do_catchsql_test NAME SQL RES     like catchsql; RES is {0 rows} or {1 msg}
#   do_eqp_test NAME SQL RES          compare the EXPLAIN QUERY PLAN details
#   execsql SQL ?DB?                  run SQL, return every value as one list
#   catchsql SQL ?DB?                 {0 values} or {1 {error message}}
#   reset_db                          close db, delete test.db*, reopen, load
#   forcedelete FILE...               delete files/directories, no error
#   integrity_check NAME ?DB?         do_test NAME: integrity_check (and
#                                     quota_integrity()) give ok
#   ifcapable EXPR SCRIPT ?else ELSE? run SCRIPT if the capability EXPR holds
#   load_quota ?DB?                   enable and load the extension into DB
#   run_sql_process ?OPT? FILE SQL    run SQL in a child tclsh, return values
#   bg_sql_process ?OPT? FILE SQL     same, in the background: returns a pid
#   bg_wait PID ?MS?                  wait for a bg process, return its values
#   bg_kill PID ?SIGNAL?              kill a bg process (default KILL)
#   run_sqlite3_shell ?OPT? FILE SQL  run SQL through the sqlite3 CLI
#   test_match EXPECTED GOT           the comparison used by do_test (1 = ok)
#   finish_test                       print the summary and exit
#   run_suite PREFIX FILE             run test file FILE as part of this one
#   known_failure NAME REASON         test NAME is known to fail, for REASON
#
# Expected values.  EXPECTED is compared with the result as a string.  As in
# SQLite, EXPECTED of the form /RE/ is a regular expression and *GLOB* a
# glob pattern; both must match the whole result.  do_execsql_test and
# do_catchsql_test normalise EXPECTED as a Tcl list, so line breaks and
# extra spaces in it do not matter.  SQL NULL reads as the empty string
# (write {} in expected lists) unless a file sets "db nullvalue NULL".
#
# Test names.  After "set testprefix X", a name that begins with a digit
# becomes X-NAME (1.0 -> X-1.0).  A name used twice in one file is counted
# as a failure, so every failure report is unambiguous.  The tests of a
# file that run_suite runs inside another get its PREFIX in front as well
# (newest-faults-1.1).
#
# Output.  Passing tests print nothing (set TESTER_VERBOSE=1 in the
# environment to list them).  A failing test prints
#     ! NAME expected: [EXPECTED]
#     ! NAME got:      [RESULT]
# (or "! NAME error: MESSAGE" when SCRIPT raised an error).  finish_test
# prints "Failures on these tests: ..." if any, then the line
# "N errors out of M tests" that all.tcl parses, and exits 1 on errors.
# A test marked with known_failure prints "KNOWN FAILURE NAME: REASON"
# instead when it fails, and counts as an error only if it passes.
#
# Capabilities (ifcapable).  EXPR is a Tcl expression over:
#   version OP X.Y[.Z]   the SQLite library version (sqlite_version()),
#                        OP one of < <= > >= == !=; e.g. version>=3.44
#   NAME                 1 if PRAGMA compile_options lists ENABLE_NAME or
#                        NAME (or NAME=V with V not 0), 0 if it lists
#                        OMIT_NAME or nothing; case-insensitive.  So
#                        fts5, rtree, math_functions, load_extension ...
#   quota                1 if the built extension file exists
# joined with ! && || and parentheses, e.g.
#     ifcapable {version>=3.44 && !omit_shared_cache} { ... }
#     ifcapable fts5 { ... } else { ... }
#
# Other processes.  run_sql_process and bg_sql_process start a child
# "tclsh" (the same interpreter as this one) whose cwd is the scratch
# directory.  It opens FILE as "db", sets "db timeout" (5000 ms by
# default), loads the extension (when $quota_autoload is 1), runs SQL
# with "db eval" and reports the values; an SQL error comes back as a Tcl
# error with the same message, so tests can catch it.  Options:
#     -ext / -noext   load the extension or not (default: $quota_autoload)
#     -tcl            SQL is a Tcl script run in the child (db is open);
#                     its result is reported
#     -timeout MS     the child's busy timeout
#     -start FILE     the child waits (up to 30 s) for FILE to exist before
#                     it runs, so several children can be started and then
#                     released together: close [open FILE w]
# Keep a child's output small: it is returned in one piece at the end.
# Anything a -tcl script prints itself is ignored.
# finish_test kills any background process still running.
#
#***********************************************************************

package require sqlite3

#-------------------------------------------------------------------------
# Locations and the scratch directory.
#
set testdir   [file dirname [file normalize [info script]]]

# A test file sourced by run_suite (see there) sources this file again: the
# harness is set up already; the suite only gets a fresh database, in the
# scratch directory run_suite made for it.
if {[info exists tester_suite_prefix] && $tester_suite_prefix ne ""} {
  catch {db close}
  forcedelete test.db test.db-journal test.db-wal test.db-shm
  sqlite3 db test.db
  if {$quota_autoload} { load_quota db }
  return
}
set repo_root [file dirname $testdir]
# QUOTA_BUILD names another directory of drivers (make asan builds its
# sanitized drivers into build/asan); scratch files stay under build/.
if {[info exists ::env(QUOTA_BUILD)] && $::env(QUOTA_BUILD) ne ""} {
  set build_dir [file normalize $::env(QUOTA_BUILD)]
} else {
  set build_dir [file join $repo_root build]
}
if {[info exists ::env(QUOTA_EXT)] && $::env(QUOTA_EXT) ne ""} {
  set quota_ext [file normalize $::env(QUOTA_EXT)]
} else {
  set quota_ext [file join $repo_root quota]
}
if {![info exists quota_autoload]} { set quota_autoload 1 }
if {![info exists driver_sqlite]} { set driver_sqlite [sqlite3 -version] }

if {[info exists ::argv0] && [file extension $::argv0] eq ".test"} {
  set tester_name [file rootname [file tail $::argv0]]
} else {
  set tester_name [file rootname [file tail [info script]]]
}
set scratch_dir [file join $repo_root build testdir $tester_name]
file delete -force -- $scratch_dir
file mkdir $scratch_dir
cd $scratch_dir

# Bookkeeping.
set tester_nTest 0               ;# tests run
set tester_nErr 0                ;# tests failed
set tester_failList [list]       ;# names of the failed tests
array set tester_names {}        ;# names seen, to catch duplicates
array set tester_bg {}           ;# pid -> channel of background children
set tester_verbose [expr {
  [info exists ::env(TESTER_VERBOSE)] && $::env(TESTER_VERBOSE) ni {"" 0}
}]

#-------------------------------------------------------------------------
# Test-name and comparison helpers.
#
proc fix_testname {varname} {
  upvar $varname testname
  if {[info exists ::testprefix]
   && [string is digit -strict [string range $testname 0 0]]
  } {
    set testname "${::testprefix}-$testname"
  }
  if {$::tester_suite_prefix ne ""} {
    set testname "${::tester_suite_prefix}-$testname"
  }
}

# test_match EXPECTED GOT
#   1 if GOT satisfies EXPECTED: /RE/ as a regular expression, *GLOB* as a
#   glob pattern (both anchored), anything else as an exact string.
proc test_match {expected got} {
  if {[regexp {^/(.*)/$} $expected -> re]} {
    return [regexp -- "^(?:$re)\$" $got]
  }
  if {[string length $expected]>1 && [regexp {^\*.*\*$} $expected]} {
    return [string match $expected $got]
  }
  return [expr {[string compare $expected $got]==0}]
}

proc tester_fail {name} {
  incr ::tester_nErr
  lappend ::tester_failList $name
}

# do_test NAME SCRIPT EXPECTED
#   Run SCRIPT in the caller's frame; the test passes if its result matches
#   EXPECTED (see test_match).  An error raised by SCRIPT is a failure.
proc do_test {name cmd expected} {
  fix_testname name
  incr ::tester_nTest
  if {[info exists ::tester_names($name)]} {
    puts "! $name error: duplicate test name"
    tester_fail $name
    return
  }
  set ::tester_names($name) 1
  set ok 0
  if {[catch {uplevel 1 $cmd} result]} {
    set why [list "! $name error: $result"]
  } elseif {![test_match $expected $result]} {
    set why [list "! $name expected: \[$expected\]" "! $name got:      \[$result\]"]
  } else {
    set ok 1
  }
  if {[info exists ::tester_known($name)]} {
    # A known failure: failing is what it should do until it is fixed.
    if {$ok} {
      puts "! $name passed, but is marked as a known failure\
            ($::tester_known($name)): remove the known_failure"
      tester_fail $name
    } else {
      puts "KNOWN FAILURE $name: $::tester_known($name)"
    }
  } elseif {!$ok} {
    foreach l $why { puts $l }
    tester_fail $name
  } elseif {$::tester_verbose} {
    puts "$name Ok"
  }
  flush stdout
}

# known_failure NAME REASON
#   Test NAME (its full name, after the prefixes) is known to fail, for
#   REASON (a bug that is not fixed yet): its failure then prints a line
#   "KNOWN FAILURE NAME: REASON" (all.tcl shows such lines) and does not
#   count; if it passes, that is a failure, so that the mark goes when the
#   bug does.
proc known_failure {name reason} {
  set ::tester_known($name) $reason
}

# execsql SQL ?DB?
#   Run SQL on DB (default db) and return all values of all rows as one
#   flat list.  $var in SQL binds the caller's Tcl variable.
proc execsql {sql {db db}} {
  uplevel 1 [list $db eval $sql]
}

# catchsql SQL ?DB?
#   Like execsql, but returns {0 VALUES} on success or {1 MESSAGE} on error.
proc catchsql {sql {db db}} {
  set rc [catch {uplevel 1 [list $db eval $sql]} msg]
  list $rc $msg
}

# do_execsql_test NAME SQL ?EXPECTED?
proc do_execsql_test {name sql {expected {}}} {
  uplevel 1 [list do_test $name [list execsql $sql] [list {*}$expected]]
}

# do_catchsql_test NAME SQL EXPECTED     (EXPECTED is {0 values} or {1 msg})
proc do_catchsql_test {name sql expected} {
  uplevel 1 [list do_test $name [list catchsql $sql] [list {*}$expected]]
}

# query_plan SQL ?DB?
#   The "detail" column of EXPLAIN QUERY PLAN SQL, as a list.
proc query_plan {sql {db db}} {
  set res [list]
  $db eval "EXPLAIN QUERY PLAN $sql" tester_r { lappend res $tester_r(detail) }
  return $res
}

# do_eqp_test NAME SQL EXPECTED
#   EXPECTED is the list of EXPLAIN QUERY PLAN detail strings, in order.
proc do_eqp_test {name sql expected} {
  uplevel 1 [list do_test $name [list query_plan $sql] [list {*}$expected]]
}

# integrity_check NAME ?DB?
#   do_test NAME: PRAGMA integrity_check on DB gives "ok".  When DB has the
#   quota extension loaded and a virtual table named quota in main, the
#   extension's own check, SELECT quota_integrity(), must also give "ok"
#   (SQLite before 3.44 does not run a virtual table's xIntegrity).
proc integrity_check {name {db db}} {
  uplevel 1 [list do_test $name [list tester_integrity $db] ok]
}
proc tester_integrity {db} {
  set r [$db eval {PRAGMA integrity_check}]
  if {$r eq "ok"
   && [$db exists {
         SELECT 1 FROM pragma_function_list WHERE name='quota_integrity'
       }]
   && [$db exists {
         SELECT 1 FROM main.sqlite_schema
          WHERE type='table' AND name='quota' AND sql LIKE 'CREATE VIRTUAL%'
       }]
  } {
    set r [$db one {SELECT quota_integrity()}]
  }
  return $r
}

#-------------------------------------------------------------------------
# Files and databases.
#

# forcedelete FILE...
#   Delete files or directories; missing ones are not an error.
proc forcedelete {args} {
  foreach f $args {
    file delete -force -- $f
  }
}

# load_quota ?DB?
#   Enable extension loading on DB and load the quota extension through
#   SQL load_extension(), as an application would.
proc load_quota {{db db}} {
  set path $::quota_ext
  $db enable_load_extension 1
  if {[catch {$db eval {SELECT load_extension($path)}} msg]} {
    if {![quota_built]} {
      error "cannot load $path: extension not built (run make): $msg"
    }
    error $msg
  }
  return
}

proc quota_built {} {
  expr {[file exists $::quota_ext]
     || [file exists $::quota_ext[info sharedlibextension]]}
}

# reset_db
#   Close db, delete test.db and its -journal/-wal/-shm, reopen "db" on
#   test.db and load the extension into it (unless $quota_autoload is 0).
proc reset_db {} {
  catch {db close}
  forcedelete test.db test.db-journal test.db-wal test.db-shm
  sqlite3 db test.db
  if {$::quota_autoload} { load_quota db }
  return
}

#-------------------------------------------------------------------------
# Capabilities.
#
proc tester_caps_init {} {
  if {[info exists ::tester_caps]} return
  sqlite3 tester_capdb :memory:
  set ::tester_caps(version) [tester_capdb one {SELECT sqlite_version()}]
  foreach opt [tester_capdb eval {PRAGMA compile_options}] {
    set opt [string tolower $opt]
    set val 1
    if {[regexp {^([^=]+)=(.*)$} $opt -> opt v]} {
      set val [expr {$v ne "0"}]
    }
    if {[regexp {^omit_(.*)$} $opt -> base]} {
      set ::tester_caps($base) 0
      set ::tester_caps($opt) 1
    } elseif {[regexp {^enable_(.*)$} $opt -> base]} {
      set ::tester_caps($base) $val
      set ::tester_caps($opt) $val
    } else {
      set ::tester_caps($opt) $val
    }
  }
  tester_capdb close
}

proc tester_cap {name} {
  set name [string tolower $name]
  if {$name eq "quota"} { return [quota_built] }
  if {[info exists ::tester_caps($name)]} { return $::tester_caps($name) }
  return 0
}

# tester_capable EXPR -> 1 or 0 (see "Capabilities" in the header)
proc tester_capable {e} {
  tester_caps_init
  set v $::tester_caps(version)
  set re {\mversion\s*(<=|>=|==|!=|<|>)\s*([0-9]+(?:\.[0-9]+)*)}
  while {[regexp -indices -- $re $e all op want]} {
    set op   [string range $e {*}$op]
    set want [string range $e {*}$want]
    set c [package vcompare $v $want]
    set ok [expr "$c $op 0"]
    set e [string replace $e {*}$all $ok]
  }
  if {[regexp {[\[\]\$\\;"{}]} $e]} {
    error "ifcapable: bad expression: $e"
  }
  regsub -all {\m[A-Za-z_][A-Za-z_0-9]*} $e {[tester_cap \0]} e
  expr $e
}

# ifcapable EXPR SCRIPT ?else ELSESCRIPT?
proc ifcapable {expr code {else ""} {elsecode ""}} {
  if {[tester_capable $expr]} {
    return -code [catch {uplevel 1 $code} r] $r
  } elseif {$else eq "else"} {
    return -code [catch {uplevel 1 $elsecode} r] $r
  }
  return
}

#-------------------------------------------------------------------------
# Other processes on the same database file.
#

# The program a child tclsh runs.  It reads its parameters from the
# variable "cfg" (a dict) prepended by tester_child_script.
set tester_child_body {
  package require sqlite3
  if {[dict get $cfg start] ne ""} {
    set t [expr {[clock milliseconds] + 30000}]
    while {![file exists [dict get $cfg start]]} {
      if {[clock milliseconds] > $t} {
        puts "@@tester-result@@ [list error {start file never appeared}]"
        exit 0
      }
      after 5
    }
  }
  if {[catch {
    sqlite3 db [dict get $cfg file]
    db timeout [dict get $cfg timeout]
    if {[dict get $cfg ext] ne ""} {
      set path [dict get $cfg ext]
      db enable_load_extension 1
      db eval {SELECT load_extension($path)}
    }
    if {[dict get $cfg tcl]} {
      set tester_res [uplevel #0 [dict get $cfg sql]]
    } else {
      set tester_res [db eval [dict get $cfg sql]]
    }
    db close
  } msg]} {
    puts "@@tester-result@@ [list error $msg]"
  } else {
    puts "@@tester-result@@ [list ok $tester_res]"
  }
  flush stdout
  exit 0
}

proc tester_child_script {optlist} {
  set cfg [dict create ext [expr {$::quota_autoload ? $::quota_ext : ""}] \
             tcl 0 timeout 5000 start ""]
  set args $optlist
  while {[llength $args] > 2} {
    set args [lassign $args opt]
    switch -- $opt {
      -ext     { dict set cfg ext $::quota_ext }
      -noext   { dict set cfg ext "" }
      -tcl     { dict set cfg tcl 1 }
      -timeout { set args [lassign $args v]; dict set cfg timeout $v }
      -start   { set args [lassign $args v]; dict set cfg start $v }
      default  { error "unknown option $opt" }
    }
  }
  if {[llength $args] != 2} {
    error "usage: ?-ext|-noext? ?-tcl? ?-timeout MS? ?-start FILE? FILE SQL"
  }
  lassign $args file sql
  dict set cfg file $file
  dict set cfg sql $sql
  return "set cfg [list $cfg]\n$::tester_child_body"
}

# bg_sql_process ?OPTIONS? FILE SQL
#   Start a child process running SQL (or, with -tcl, a script) against
#   FILE and return its pid at once.  Collect its result with bg_wait.
proc bg_sql_process {args} {
  set script [tester_child_script $args]
  set ch [open |[list [info nameofexecutable] << $script 2>@1] r]
  fconfigure $ch -blocking 0 -translation lf
  set pid [lindex [pid $ch] 0]
  set ::tester_bg($pid) [list $ch ""]
  fileevent $ch readable [list tester_bg_read $pid]
  return $pid
}

proc tester_bg_read {pid} {
  lassign $::tester_bg($pid) ch buf
  append buf [read $ch]
  if {[eof $ch]} {
    fileevent $ch readable {}
    set ::tester_bg_done($pid) 1
  }
  set ::tester_bg($pid) [list $ch $buf]
}

# bg_wait PID ?TIMEOUT_MS?
#   Wait (default up to 60 s) for a child started by bg_sql_process and
#   return its values; an SQL error in the child is raised here.  On
#   timeout the child is killed and an error raised.
proc bg_wait {pid {ms 60000}} {
  if {![info exists ::tester_bg($pid)]} { error "no such background process: $pid" }
  set tid [after $ms [list set ::tester_bg_done($pid) timeout]]
  while {![info exists ::tester_bg_done($pid)]} {
    vwait ::tester_bg_done($pid)
  }
  after cancel $tid
  set how $::tester_bg_done($pid)
  unset ::tester_bg_done($pid)
  if {$how eq "timeout"} {
    bg_kill $pid
    error "background process $pid timed out after $ms ms"
  }
  lassign $::tester_bg($pid) ch out
  unset ::tester_bg($pid)
  fconfigure $ch -blocking 1
  set status ""
  if {[catch {close $ch} msg opts]} {
    set status " ([lrange [dict get $opts -errorcode] 0 end])"
  }
  set i [string last "@@tester-result@@ " $out]
  if {$i < 0 || [catch {
        lassign [string range $out [expr {$i+18}] end] tag value
      }] || $tag ni {ok error}} {
    error "background process $pid failed$status: [string trim $out]"
  }
  if {$tag eq "error"} { error $value }
  return $value
}

# bg_kill PID ?SIGNAL?
#   Kill a child started by bg_sql_process (SIGKILL unless SIGNAL given)
#   and forget it.
proc bg_kill {pid {sig KILL}} {
  catch {exec kill -$sig $pid}
  if {[info exists ::tester_bg($pid)]} {
    lassign $::tester_bg($pid) ch
    unset ::tester_bg($pid)
    catch {fconfigure $ch -blocking 1}
    catch {close $ch}
  }
  catch {unset ::tester_bg_done($pid)}
  return
}

# run_sql_process ?OPTIONS? FILE SQL
#   Run SQL against FILE in a child process, wait, return its values.
proc run_sql_process {args} {
  bg_wait [bg_sql_process {*}$args]
}

# run_sqlite3_shell ?-ext|-noext? FILE SQL
#   Run SQL through the sqlite3 command-line shell (with
#   -cmd '.load <extension>' unless -noext) and return its output with
#   stderr merged and the trailing newline removed.  Never raises an error
#   for a failing statement: the shell's message is part of the output.
proc run_sqlite3_shell {args} {
  set ext $::quota_autoload
  while {[llength $args] > 2} {
    set args [lassign $args opt]
    switch -- $opt {
      -ext    { set ext 1 }
      -noext  { set ext 0 }
      default { error "unknown option $opt" }
    }
  }
  lassign $args file sql
  set cmd [list sqlite3 -batch]
  if {$ext} { lappend cmd -cmd ".load $::quota_ext" }
  lappend cmd $file
  if {[catch {exec {*}$cmd << $sql 2>@1} out opts]} {
    # exec appends this line when the shell exits non-zero (it does after
    # an error in -batch mode); it is not the shell's output.
    regsub {\n?child process exited abnormally$} $out {} out
  }
  string trimright $out "\n"
}

#-------------------------------------------------------------------------
# The end of a test file.
#
proc finish_test {} {
  foreach pid [array names ::tester_bg] { bg_kill $pid }
  catch {db close}
  if {$::tester_suite_prefix ne ""} {
    # The end of a suite that run_suite runs: its caller goes on.
    return -code return
  }
  if {$::tester_nErr > 0} {
    puts "Failures on these tests: $::tester_failList"
  }
  puts "$::tester_nErr errors out of $::tester_nTest tests"
  flush stdout
  exit [expr {$::tester_nErr > 0}]
}

# run_suite PREFIX FILE
#   Run the test file FILE inside this one, as a suite: it is sourced at
#   global level with $argv0 set to FILE, in its own scratch directory
#   (PREFIX-<name of FILE>, under this file's), with this file's $build_dir
#   and $driver_sqlite; its tests count here, named PREFIX-NAME (NAME after
#   the suite's own testprefix), and its finish_test ends the suite only. The
#   suite's procs and other globals stay defined afterwards; $argv0,
#   $testprefix and $quota_autoload are restored, db is reopened on this
#   file's test.db. An error that escapes the suite counts as a failure.
proc run_suite {prefix file} {
  set file [file normalize $file]
  set name $prefix-[file rootname [file tail $file]]
  set saved [dict create]
  foreach v {argv0 testprefix quota_autoload} {
    if {[info exists ::$v]} { dict set saved $v [set ::$v] }
  }
  set cwd [pwd]
  set dir [file join $::scratch_dir $name]
  file delete -force -- $dir
  file mkdir $dir
  cd $dir
  set ::argv0 $file
  set ::tester_suite_prefix $prefix
  set rc [catch {uplevel #0 [list source $file]} msg]
  set ::tester_suite_prefix ""
  foreach pid [array names ::tester_bg] { bg_kill $pid }
  catch {db close}
  cd $cwd
  foreach v {argv0 testprefix quota_autoload} {
    unset -nocomplain ::$v
    if {[dict exists $saved $v]} { set ::$v [dict get $saved $v] }
  }
  if {$rc == 1} {
    incr ::tester_nTest
    puts "! $name error: $msg"
    tester_fail $name
  }
  reset_db
}

# Start every file on a fresh database.
set tester_suite_prefix ""
reset_db
