/*
** test/sqlshell.c: a minimal SQL runner with sqlite-quota compiled in, for
** test/hostile.test (which runs it as build/sqlshell against the system
** SQLite and as build/newest/sqlshell against the newest release).
**
**   build/sqlshell [--trusted-schema on|off] [--defensive on|off] DB
**                  [[OPTIONS] DB ...] < SCRIPT
**   build/sqlshell --version
**
** Opens DB (created if missing) with the extension registered through
** sqlite3_auto_extension, as an application that links libsqlite_quota.a
** would, applies the options (SQLITE_DBCONFIG_TRUSTED_SCHEMA and
** SQLITE_DBCONFIG_DEFENSIVE; an option not given keeps SQLite's default),
** then runs SCRIPT from standard input one statement at a time, and closes
** DB. With several DBs the script runs on each in turn, on a connection of
** its own, after a line "@@sqlshell-run@@"; an option holds for the DBs
** after it (so one process can try a script in several configurations).
** Running a script:
**
**   * the rows of a statement are printed as "sqlite3 -list" prints them:
**     the columns joined by "|", NULL as the empty string, one line a row;
**   * a statement that fails prints "Error: MESSAGE" (sqlite3_errmsg) on
**     standard output, after any rows it printed, and the script goes on
**     with the next statement;
**   * a line ".print TEXT" (at the start of a statement) prints TEXT;
**     ".version" prints sqlite_version().
**
** A connection that cannot be closed (a statement left unfinalized) prints
** "Error: close: MESSAGE". --version prints sqlite_version() and exits.
** The exit status is 0 when the script was run to its end on every DB
** (whatever its statements did), 2 on a bad command line or when a DB
** cannot be opened or configured. A crash is a crash: the caller sees the
** signal.
*/
#include <sqlite3.h>
#include "quota.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void){
  fprintf(stderr, "usage: sqlshell [--trusted-schema on|off] "
                  "[--defensive on|off] DB [[OPTIONS] DB ...] < SCRIPT\n"
                  "       sqlshell --version\n");
  exit(2);
}

/* "on" -> 1, "off" -> 0, anything else: usage. */
static int onOff(const char *z){
  if( z==0 ) usage();
  if( strcmp(z, "on")==0 ) return 1;
  if( strcmp(z, "off")==0 ) return 0;
  usage();
  return 0;
}

/* The whole of standard input, NUL-terminated; exits 2 on failure. */
static char *readAll(size_t *pn){
  size_t nAlloc = 4096, n = 0;
  char *z = malloc(nAlloc);
  if( z==0 ){ fprintf(stderr, "sqlshell: out of memory\n"); exit(2); }
  for(;;){
    size_t got;
    if( n+1>=nAlloc ){
      char *zNew;
      nAlloc *= 2;
      zNew = realloc(z, nAlloc);
      if( zNew==0 ){ free(z); fprintf(stderr, "sqlshell: out of memory\n"); exit(2); }
      z = zNew;
    }
    got = fread(z+n, 1, nAlloc-n-1, stdin);
    if( got==0 ) break;
    n += got;
  }
  if( ferror(stdin) ){ free(z); fprintf(stderr, "sqlshell: cannot read input\n"); exit(2); }
  z[n] = 0;
  *pn = n;
  return z;
}

/* Print an error line for db. */
static void showError(sqlite3 *db){
  printf("Error: %s\n", sqlite3_errmsg(db));
}

/* Run the one statement zSql (NUL-terminated), printing rows or an error. */
static void runOne(sqlite3 *db, const char *zSql){
  const char *zTail = zSql;
  while( zTail && zTail[0] ){
    sqlite3_stmt *pStmt = 0;
    const char *zNext = 0;
    int rc = sqlite3_prepare_v2(db, zTail, -1, &pStmt, &zNext);
    if( rc!=SQLITE_OK ){
      showError(db);
      sqlite3_finalize(pStmt);
      return;
    }
    if( pStmt==0 ){            /* only a comment or white space */
      if( zNext==0 || zNext==zTail ) return;
      zTail = zNext;
      continue;
    }
    for(;;){
      int nCol, i;
      rc = sqlite3_step(pStmt);
      if( rc!=SQLITE_ROW ) break;
      nCol = sqlite3_column_count(pStmt);
      for(i=0; i<nCol; i++){
        const unsigned char *z;
        int nByte;
        if( i>0 ) fputc('|', stdout);
        if( sqlite3_column_type(pStmt, i)==SQLITE_NULL ) continue;
        z = sqlite3_column_text(pStmt, i);
        nByte = sqlite3_column_bytes(pStmt, i);
        if( z==0 ){
          /* Out of memory converting the value: say so, do not guess. */
          fputs("<?>", stdout);
          continue;
        }
        fwrite(z, 1, (size_t)nByte, stdout);
      }
      fputc('\n', stdout);
    }
    if( rc!=SQLITE_DONE ){
      showError(db);
      sqlite3_finalize(pStmt);
      return;
    }
    if( sqlite3_finalize(pStmt)!=SQLITE_OK ){
      showError(db);
      return;
    }
    if( zNext==0 || zNext==zTail ) return;
    zTail = zNext;
  }
}

/* A dot line: ".print TEXT" or ".version". */
static void runDot(sqlite3 *db, const char *zLine, size_t n){
  if( n>=6 && strncmp(zLine, ".print", 6)==0 && (n==6 || zLine[6]==' ') ){
    const char *z = zLine + 6;
    size_t m = n - 6;
    if( m>0 ){ z++; m--; }
    fwrite(z, 1, m, stdout);
    fputc('\n', stdout);
  }else if( n==8 && strncmp(zLine, ".version", 8)==0 ){
    runOne(db, "SELECT sqlite_version()");
  }else{
    printf("Error: unknown command: %.*s\n", (int)n, zLine);
  }
}

/* Run the script zIn (nIn bytes) on db; zBuf has room for nIn+1 bytes.
** Statements end at a ';' that sqlite3_complete() says completes them (so
** a trigger body's ';' does not); a line that starts with '.' where a
** statement would start is a dot command. The text after the last
** complete statement, if it is not just white space or comments, runs as
** a statement of its own. */
static void runScript(sqlite3 *db, const char *zIn, size_t nIn, char *zBuf){
  size_t i, iStart = 0;
  while( iStart<nIn ){
    if( zIn[iStart]==' ' || zIn[iStart]=='\t' || zIn[iStart]=='\n'
     || zIn[iStart]=='\r' ){
      iStart++;
      continue;
    }
    if( zIn[iStart]=='.' ){
      size_t e = iStart;
      while( e<nIn && zIn[e]!='\n' ) e++;
      runDot(db, zIn+iStart, (zIn[e-1]=='\r') ? e-iStart-1 : e-iStart);
      fflush(stdout);
      iStart = e;
      continue;
    }
    for(i=iStart; i<nIn; i++){
      if( zIn[i]==';' ){
        memcpy(zBuf, zIn+iStart, i+1-iStart);
        zBuf[i+1-iStart] = 0;
        if( sqlite3_complete(zBuf) ) break;
      }
    }
    if( i==nIn ){
      memcpy(zBuf, zIn+iStart, nIn-iStart);
      zBuf[nIn-iStart] = 0;
    }
    runOne(db, zBuf);
    fflush(stdout);
    iStart = (i==nIn) ? nIn : i+1;
  }
}

/* Open zDb, configure it (an option <0 is left as it is), run the script,
** close. Returns 0, or 2 when the database cannot be opened or set up. */
static int runDb(const char *zDb, int trusted, int defensive,
                 const char *zIn, size_t nIn, char *zBuf){
  sqlite3 *db = 0;
  int rc, got;
  rc = sqlite3_open(zDb, &db);
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "sqlshell: cannot open %s: %s\n", zDb,
            db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return 2;
  }
  if( trusted>=0 ){
    rc = sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, trusted, &got);
    if( rc!=SQLITE_OK || got!=trusted ){
      fprintf(stderr, "sqlshell: cannot set trusted_schema\n");
      sqlite3_close(db);
      return 2;
    }
  }
  if( defensive>=0 ){
    rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, defensive, &got);
    if( rc!=SQLITE_OK || got!=defensive ){
      fprintf(stderr, "sqlshell: cannot set defensive\n");
      sqlite3_close(db);
      return 2;
    }
  }
  runScript(db, zIn, nIn, zBuf);
  rc = sqlite3_close(db);
  if( rc!=SQLITE_OK ){
    printf("Error: close: %s\n", sqlite3_errmsg(db));
  }
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv){
  int trusted = -1, defensive = -1;
  int nDb = 0, iArg, rc;
  char *zIn, *zBuf;
  size_t nIn;

  /* A first pass checks the command line and counts the databases. */
  for(iArg=1; iArg<argc; iArg++){
    const char *z = argv[iArg];
    if( strcmp(z, "--trusted-schema")==0 || strcmp(z, "--defensive")==0 ){
      onOff(iArg+1<argc ? argv[++iArg] : 0);
    }else if( strcmp(z, "--version")==0 ){
      printf("%s\n", sqlite3_libversion());
      return 0;
    }else if( z[0]=='-' ){
      usage();
    }else{
      nDb++;
    }
  }
  if( nDb==0 ) usage();

  rc = sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  if( rc!=SQLITE_OK ){
    fprintf(stderr, "sqlshell: sqlite3_auto_extension: %d\n", rc);
    return 2;
  }
  zIn = readAll(&nIn);
  zBuf = malloc(nIn + 1);
  if( zBuf==0 ){
    fprintf(stderr, "sqlshell: out of memory\n");
    free(zIn);
    return 2;
  }
  rc = 0;
  for(iArg=1; rc==0 && iArg<argc; iArg++){
    const char *z = argv[iArg];
    if( strcmp(z, "--trusted-schema")==0 ){
      trusted = onOff(argv[++iArg]);
    }else if( strcmp(z, "--defensive")==0 ){
      defensive = onOff(argv[++iArg]);
    }else{
      if( nDb>1 ){
        printf("@@sqlshell-run@@\n");
        fflush(stdout);
      }
      rc = runDb(z, trusted, defensive, zIn, nIn, zBuf);
    }
  }
  free(zBuf);
  free(zIn);
  return rc;
}
