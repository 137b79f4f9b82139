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
# The test runner: "make test" runs "tclsh test/all.tcl".
#
#     tclsh test/all.tcl ?-j N? ?FILE.test ...?
#
# Runs every test/*.test (or only the FILEs named), in sorted order, each
# in its own tclsh process whose cwd is the repository root, at most N at
# a time (default 2, or $TESTER_JOBS; this machine has 2 cores).  Each file
# ends with SQLite's summary line "N errors out of M tests" (finish_test in
# tester.tcl), which this script parses.
#
# Output, in the order of the files whatever the order they finish in:
#     test/load.test                     7 tests    0 errors    0.21 s
# one line per file; after a failed file's line comes its whole output,
# indented (a file only prints its failures and its summary), after any
# other file's line the lines of its output that begin with "KNOWN " (its
# known failures, see known_failure in tester.tcl) or say "NAME: SKIPPED"
# (what it could not run, and why).  A file that
# crashes, exits abnormally, runs longer than $TESTER_TIMEOUT seconds
# (default 600) or prints no summary counts as one failed test.  Before
# the last line, one line "FAILED FILE: NAMES" per failed file (its failing
# tests, or what went wrong), for tools that show only the end.  The last
# line is exactly
#     N passed, N failed
# (passed = tests run minus failed) and the exit status is 1 if anything
# failed.
#
#***********************************************************************

set root [file dirname [file dirname [file normalize [info script]]]]

set jobs 2
if {[info exists env(TESTER_JOBS)] && [string is integer -strict $env(TESTER_JOBS)]} {
  set jobs $env(TESTER_JOBS)
}
set timeout 600
if {[info exists env(TESTER_TIMEOUT)] && [string is integer -strict $env(TESTER_TIMEOUT)]} {
  set timeout $env(TESTER_TIMEOUT)
}

set files [list]
for {set i 0} {$i < [llength $argv]} {incr i} {
  set a [lindex $argv $i]
  if {$a eq "-j"} {
    set jobs [lindex $argv [incr i]]
  } elseif {[string match -j* $a]} {
    set jobs [string range $a 2 end]
  } else {
    if {![file isfile $a]} {
      puts stderr "all.tcl: no such file: $a"
      exit 2
    }
    lappend files [file normalize $a]
  }
}
if {![string is integer -strict $jobs] || $jobs < 1} {
  puts stderr "usage: tclsh test/all.tcl ?-j N? ?FILE.test ...?"
  exit 2
}
cd $root
if {[llength $files] == 0} {
  set files [lsort [glob -nocomplain -directory test *.test]]
} else {
  # Show the files relative to the root when they are inside it.
  set rel [list]
  foreach f $files {
    if {[string first $root/ $f] == 0} {
      set f [string range $f [string length $root/] end]
    }
    lappend rel $f
  }
  set files $rel
}

set tclsh [info nameofexecutable]
set nFile [llength $files]
set next 0                 ;# index of the next file to start
set shown 0                ;# index of the next file to print
set running 0
set nTest 0
set nFail 0
set failedFiles {}         ;# "FILE: failing tests" of every failed file
array set R {}             ;# index -> {output status seconds}

proc start {i} {
  global files tclsh timeout running
  set f [lindex $files $i]
  # TESTER_WRAP runs each file under a tool, e.g. "valgrind -q --error-exitcode=99".
  set wrap [expr {[info exists ::env(TESTER_WRAP)] ? $::env(TESTER_WRAP) : ""}]
  set ch [open |[list {*}$wrap $tclsh $f 2>@1] r]
  fconfigure $ch -blocking 0 -translation auto
  set ::OUT($i) ""
  set ::T0($i) [clock milliseconds]
  set ::CH($i) $ch
  set ::TIMER($i) [after [expr {$timeout*1000}] [list timed_out $i]]
  fileevent $ch readable [list readable $i]
  incr running
}

proc readable {i} {
  set ch $::CH($i)
  append ::OUT($i) [read $ch]
  if {[eof $ch]} { finished $i "" }
}

proc timed_out {i} {
  set ch $::CH($i)
  foreach p [pid $ch] { catch {exec kill -9 $p} }
  catch {append ::OUT($i) [read $ch]}
  finished $i "timed out after $::timeout s"
}

proc finished {i why} {
  global R running
  after cancel $::TIMER($i)
  set ch $::CH($i)
  fileevent $ch readable {}
  fconfigure $ch -blocking 1
  set status $why
  if {[catch {close $ch} msg opts]} {
    set ec [dict get $opts -errorcode]
    if {$status ne ""} {
      # already explained
    } elseif {[lindex $ec 0] eq "CHILDSTATUS"} {
      set status "exit status [lindex $ec 2]"
    } elseif {[lindex $ec 0] eq "CHILDKILLED"} {
      set status "killed by [lindex $ec 2]"
    } else {
      set status "abnormal exit: $ec"
    }
  }
  set secs [expr {([clock milliseconds] - $::T0($i)) / 1000.0}]
  set R($i) [list $::OUT($i) $status $secs]
  unset ::CH($i) ::OUT($i)
  incr running -1
  set ::wake 1
}

# Print every finished file that is next in order.
proc report {} {
  global R shown nFile files nTest nFail
  while {$shown < $nFile && [info exists R($shown)]} {
    lassign $R($shown) out status secs
    set f [lindex $files $shown]
    set tests 0
    set errors 0
    set problem ""
    set m [regexp -all -inline {(\d+) errors out of (\d+) tests} $out]
    if {[llength $m] == 0} {
      set tests 1
      set errors 1
      set problem "no summary line"
      if {$status ne ""} { append problem " ($status)" }
    } else {
      lassign [lrange $m end-2 end] - errors tests
      if {$status ne "" && !($errors > 0 && $status eq "exit status 1")} {
        # The file reported, then went wrong anyway (or exited 1 with no
        # errors): one more failure.
        incr tests
        incr errors
        set problem $status
      }
    }
    set line [format "%-34s %5d tests %5d errors %8.2f s" $f $tests $errors $secs]
    if {$errors > 0} {
      append line "   FAILED"
      if {$problem ne ""} { append line " ($problem)" }
    }
    puts $line
    if {$errors > 0} {
      foreach l [split [string trimright $out] "\n"] { puts "    $l" }
      # Recalled just before the last line, which is all some tools show.
      set names [lindex [regexp -all -inline -line {^Failures on these tests: (.*)$} $out] end]
      if {$names eq ""} { set names $problem }
      lappend ::failedFiles "$f: $names"
    } else {
      # Known failures (tester.tcl, known_failure) and skips are shown.
      foreach l [split [string trimright $out] "\n"] {
        if {[string match "KNOWN *" $l] || [string match "*: SKIPPED*" $l]} {
          puts "    $l"
        }
      }
    }
    flush stdout
    incr nTest $tests
    incr nFail $errors
    unset R($shown)
    incr shown
  }
}

while {$shown < $nFile} {
  while {$running < $jobs && $next < $nFile} {
    start $next
    incr next
  }
  if {$running > 0} { vwait ::wake }
  report
}

foreach l $failedFiles { puts "FAILED $l" }
puts "[expr {$nTest - $nFail}] passed, $nFail failed"
exit [expr {$nFail > 0}]
