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
# Procs shared by the test files that check that a call changed nothing
# (sourced after tester.tcl).  Every rule "an error changes nothing" is
# checked with one of these, so they read the store without knowing its
# shadow tables by name: a shadow table added later is covered at once.
#
#   quota_state ?bSwept? ?db? ?table?
#                     every row of every shadow table of TABLE (default
#                     quota), as {NAME ROWS NAME ROWS ...}
#   do_unchanged_test NAME SQL EXPECTED
#                     do_catchsql_test, then NAME.unchanged: quota_state
#                     is as before (the sweep watermark too after an error)
#   do_readonly_test NAME SQL EXPECTED
#                     the same, the sweep watermark always included
#   db_dump ?db?      the schema and every row of every ordinary table
#   dump_compare BEFORE ?db?
#                     "same", or what differs from the db_dump BEFORE
#   do_catchsql_unchanged_test NAME SQL EXPECTED
#                     do_catchsql_test, then NAME.unchanged: db_dump as
#                     before
#   do_catchsql_unchanged_glob_test NAME SQL PATTERN
#                     the same for an error whose message matches PATTERN
#

# table_rows DB SCHEMA TABLE ?WHERE?
#   Every row of SCHEMA.TABLE as one flat list, ordered by every column in
#   turn, so that the order does not depend on the rowid or the plan.
proc table_rows {db schema t {where 1}} {
  set qs [string map {\" \"\"} $schema]
  set qt [string map {\" \"\"} $t]
  set n [$db one "SELECT count(*) FROM pragma_table_info(\$t, \$schema)"]
  set order [list]
  for {set i 1} {$i <= $n} {incr i} { lappend order $i }
  $db eval "SELECT * FROM \"$qs\".\"$qt\" WHERE $where ORDER BY [join $order ,]"
}

# The schema that holds the virtual table TABLE: the first one in
# PRAGMA database_list order (main first) whose sqlite_schema has it;
# "main" when none has.
proc quota_schema {db table} {
  foreach s [$db eval {SELECT name FROM pragma_database_list}] {
    set qs [string map {\" \"\"} $s]
    if {[$db exists "SELECT 1 FROM \"$qs\".sqlite_schema
                     WHERE type='table' AND lower(name)=lower(\$table)"]} {
      return $s
    }
  }
  return main
}

# quota_state ?bSwept? ?db? ?table?
#   Every row of every shadow table of TABLE: each ordinary table named
#   TABLE_... in the sqlite_schema of the schema that holds TABLE, in name
#   order, as {NAME ROWS NAME ROWS ...}.  With bSwept 0 the sweep
#   watermark (the rows 'swept' and 'sweepid' of TABLE_meta) is left out:
#   a call that succeeds at a new clock time moves it even when it changes
#   nothing else.
proc quota_state {{bSwept 1} {db db} {table quota}} {
  set schema [quota_schema $db $table]
  set qs [string map {\" \"\"} $schema]
  set prefix "[string tolower $table]_"
  set res [list]
  foreach t [$db eval "
    SELECT name FROM \"$qs\".sqlite_schema
    WHERE type='table' AND sql NOT LIKE 'CREATE VIRTUAL%'
      AND substr(lower(name), 1, length(\$prefix)) = \$prefix
    ORDER BY name
  "] {
    set where 1
    if {!$bSwept && [string tolower $t] eq "${prefix}meta"} {
      set where "name NOT IN ('swept', 'sweepid')"
    }
    lappend res $t [table_rows $db $schema $t $where]
  }
  return $res
}

# do_unchanged_test NAME SQL EXPECTED
#   do_catchsql_test NAME SQL EXPECTED, then test NAME.unchanged: the
#   store is exactly what it was before SQL ran.  After an error that
#   includes the sweep watermark (the whole call was rolled back).
proc do_unchanged_test {name sql expected} {
  set bSwept [expr {[lindex $expected 0]==1}]
  set ::unchanged_before [quota_state $bSwept]
  uplevel 1 [list do_catchsql_test $name $sql $expected]
  uplevel 1 [list do_test $name.unchanged [list quota_state $bSwept] \
      $::unchanged_before]
}

# do_readonly_test NAME SQL EXPECTED
#   Like do_unchanged_test for a reader: nothing at all changes, the sweep
#   watermark included, whatever the clock.
proc do_readonly_test {name sql expected} {
  set ::unchanged_before [quota_state 1]
  uplevel 1 [list do_catchsql_test $name $sql $expected]
  uplevel 1 [list do_test $name.unchanged [list quota_state 1] \
      $::unchanged_before]
}

# db_dump ?db?
#   The schema and every row of every ordinary table of main (the shadow
#   tables, sqlite_sequence ...), as one list {NAME SQL ... TABLE ROWS ...}.
proc db_dump {{db db}} {
  set res [$db eval {SELECT name, sql FROM sqlite_schema ORDER BY name}]
  foreach t [$db eval {
    SELECT name FROM sqlite_schema
    WHERE type='table' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name
  }] {
    lappend res $t [table_rows $db main $t]
  }
  return $res
}

# dump_compare BEFORE ?db?
#   "same" when db_dump is BEFORE; otherwise only what differs:
#   {NAME BEFORE AFTER} for each changed entry.
proc dump_compare {before {db db}} {
  set after [db_dump $db]
  if {$after eq $before} { return same }
  set diff [list]
  set b [dict create {*}$before]
  set a [dict create {*}$after]
  foreach k [lsort -unique [concat [dict keys $b] [dict keys $a]]] {
    set vb [expr {[dict exists $b $k] ? [dict get $b $k] : "(absent)"}]
    set va [expr {[dict exists $a $k] ? [dict get $a $k] : "(absent)"}]
    if {$vb ne $va} { lappend diff [list $k $vb $va] }
  }
  return $diff
}

# do_catchsql_unchanged_test NAME SQL EXPECTED
#   do_catchsql_test NAME, then test NAME.unchanged: the database holds
#   exactly what it held before SQL ran.
proc do_catchsql_unchanged_test {name sql expected} {
  set before [db_dump]
  uplevel 1 [list do_catchsql_test $name $sql $expected]
  uplevel 1 [list do_test $name.unchanged [list dump_compare $before] same]
}

# do_catchsql_unchanged_glob_test NAME SQL PATTERN
#   Like do_catchsql_unchanged_test, for an error whose message matches the
#   glob PATTERN.
proc catchsql_glob {sql pattern} {
  set r [uplevel 1 [list catchsql $sql]]
  if {[lindex $r 0] == 1 && [string match $pattern [lindex $r 1]]} {
    return ok
  }
  return $r
}
proc do_catchsql_unchanged_glob_test {name sql pattern} {
  set before [db_dump]
  uplevel 1 [list do_test $name [list catchsql_glob $sql $pattern] ok]
  uplevel 1 [list do_test $name.unchanged [list dump_compare $before] same]
}

#-------------------------------------------------------------------------
# refused FUNC ARG SQLVALUE
#   The message of an argument a quota function refuses: "FUNC: ARG must
#   be RULE, not DESCRIPTION", RULE the argument's rule as ext/functions.c
#   states it, DESCRIPTION what the value was (value_describe).
# value_describe SQLVALUE
#   How the extension describes the value of the SQL expression SQLVALUE in
#   an error message (ext/util.c, quotaValueDescribe), computed here with
#   SQL's own printf: "NULL", "-3", "2.5", "text '5'", "a blob", "1.0e+30
#   (past the 64-bit range)".
set ::refused_rule [dict create \
  key        "a non-empty text or an integer" \
  request_id "a non-empty text or an integer (or NULL)" \
  amount     "a non-negative integer" \
  hold_id    "a positive integer" \
  meta       "text (JSON welcome) or NULL" \
  ttl        "a positive duration (seconds, or text such as '15 minutes') or NULL" \
]
proc value_describe {sqlval {d db}} {
  $d one "SELECT CASE typeof(v)
      WHEN 'null' THEN 'NULL'
      WHEN 'integer' THEN CAST(v AS TEXT)
      WHEN 'real' THEN printf('%!.15g', v) ||
        CASE WHEN v>=-9223372036854775808.0 AND v<9223372036854775808.0
             THEN '' ELSE ' (past the 64-bit range)' END
      WHEN 'text' THEN 'text ''' || replace(substr(v, 1, 40), '''', '''''') ||
        CASE WHEN length(CAST(v AS BLOB))>40 THEN '...' ELSE '' END || ''''
      ELSE 'a blob' END FROM (SELECT $sqlval AS v)"
}
proc refused {fn arg sqlval} {
  return "$fn: $arg must be [dict get $::refused_rule $arg], not [value_describe $sqlval]"
}

# table_refused COLUMN RULE SQLVALUE
#   The message of a value the quota table refuses (ext/vtab.c): "quota:
#   COLUMN must be RULE, not DESCRIPTION".
proc table_refused {col rule sqlval} {
  return "quota: $col must be $rule, not [value_describe $sqlval]"
}
# The accepted periods, as the table's "unknown period" message lists them.
set ::period_list "NULL, 'lifetime', 'hour', 'day', 'week', 'month', 'year', 'rolling N seconds|minutes|hours|days' or 'rate N per \[M\] second|minute|hour|day'"
