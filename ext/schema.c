/*
** schema.c: checks of a database's schema that keep a file someone else
** made from acting through sqlite-quota.
**
** SQLite refuses SQLITE_DIRECTONLY functions and SQLITE_VTAB_DIRECTONLY
** tables in triggers, views, defaults, generated columns and index
** expressions, but SQLite 3.40 does not check CHECK constraints: a table
** `t(a CHECK (quota_consume('k', a) IS NOT NULL))` in a database file
** would charge the victim's key on every INSERT INTO t. A CHECK runs only
** inside a statement of the caller that touches its table (an INSERT, an
** UPDATE, PRAGMA integrity_check), so conn.c asks, for every call made
** while some statement of the caller runs, whether a schema calls quota
** functions, and refuses the call if one does. Whether some statement
** runs is cheap to know (store.c, QuotaTxn.bClean); this file answers the
** rest by reading sqlite_schema.
**
** It also finds what must never be on a quota table's shadow tables: a
** trigger (it would run inside every call that writes the table) or a
** view in place of a table. TEMP triggers are the application's own and
** are not looked at: a quota call they make is refused as nested (conn.c).
**
** HOW IT WORKS
**   The text of each schema object is scanned as SQLite's tokenizer would
**   read it: string literals and comments are skipped, identifiers may be
**   quoted with "", [] or ``, and an identifier followed by "(" is a
**   function call, unless a name is being defined there (CREATE TABLE
**   t(..)). A call of any quota function that is not pure counts.
*/
#include "schema.h"
#include <string.h>

/* A byte that continues an identifier, as SQLite's tokenizer reads it. */
static int schemaIsIdChar(unsigned char c){
  return (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')
      || c=='_' || c=='$' || c>=0x80;
}

/* Skip spaces and comments from z; returns the first other byte. */
static const char *schemaSkipSpace(const char *z){
  for(;;){
    if( *z==' ' || *z=='\t' || *z=='\n' || *z=='\r' || *z=='\f' ){
      z++;
    }else if( z[0]=='-' && z[1]=='-' ){
      while( *z && *z!='\n' ) z++;
    }else if( z[0]=='/' && z[1]=='*' ){
      z += 2;
      while( *z && !(z[0]=='*' && z[1]=='/') ) z++;
      if( *z ) z += 2;
    }else{
      return z;
    }
  }
}

/*
** The functions a schema must never call: every quota function that is
** not pure (functions.c refuses to register one missing here, so the two
** lists cannot drift).
*/
static const char *const azWatched[] = {
  "quota_reserve", "quota_settle", "quota_release", "quota_consume",
  "quota_record", "quota_check", "quota_status", "quota_purge",
  "quota_integrity", "quota_configure", "quota_clock", "quota_debug",
  "quota_reserve_upto", "quota_hold", "quota_extend", "quota_grant",
  "quota_void", "quota_busy_timeout", 0
};

/* True when the n bytes at z name a function this file watches for. */
static int schemaIsWatched(const char *z, int n){
  int i;
  for(i=0; azWatched[i]; i++){
    if( (int)strlen(azWatched[i])==n && sqlite3_strnicmp(z, azWatched[i], n)==0 ){
      return 1;
    }
  }
  return 0;
}

/* True when zName is a function schema.c watches for (functions.c asks
** at registration). */
int quotaSchemaWatches(const char *zName){
  return schemaIsWatched(zName, (int)strlen(zName));
}

/* True when the n bytes at z are a keyword after which a name followed by
** "(" is a table or view being defined or named, not a function call:
** CREATE TABLE t(..), CREATE VIEW v(..), INSERT INTO t(..), REFERENCES
** t(..), IF NOT EXISTS t(..). No expression can follow these words, so
** no call can hide behind them. */
static int schemaIsNameKeyword(const char *z, int n){
  static const char *const az[] = {"TABLE", "VIEW", "INTO", "REFERENCES", "EXISTS", 0};
  int i;
  for(i=0; az[i]; i++){
    if( (int)strlen(az[i])==n && sqlite3_strnicmp(z, az[i], n)==0 ) return 1;
  }
  return 0;
}

/*
** True when the SQL text zSql calls a watched function. A quoted name may
** hold its quote doubled ("a""b"); such a name never matches, which is
** right: it is not a quota function's name.
*/
int quotaSchemaCallsQuota(const char *zSql){
  const char *z = zSql;
  int bAfterName = 0;             /* the last token makes a name follow */
  while( *z ){
    unsigned char c = (unsigned char)*z;
    if( c=='\'' ){
      z++;
      while( *z ){
        if( *z=='\'' ){
          if( z[1]!='\'' ) break;
          z++;
        }
        z++;
      }
      if( *z ) z++;
      bAfterName = 0;
    }else if( (c=='-' && z[1]=='-') || (c=='/' && z[1]=='*')
           || c==' ' || c=='\t' || c=='\n' || c=='\r' || c=='\f' ){
      z = schemaSkipSpace(z);
    }else if( c=='"' || c=='[' || c=='`' || schemaIsIdChar(c) ){
      const char *zName;
      int nName, bQuoted = !schemaIsIdChar(c);
      if( bQuoted ){
        char cEnd = c=='[' ? ']' : (char)c;
        zName = ++z;
        while( *z && *z!=cEnd ) z++;
        nName = (int)(z-zName);
        if( *z ) z++;
      }else{
        zName = z;
        while( schemaIsIdChar((unsigned char)*z) ) z++;
        nName = (int)(z-zName);
        if( zName[0]>='0' && zName[0]<='9' ){     /* a number */
          bAfterName = 0;
          continue;
        }
      }
      if( !bAfterName && *schemaSkipSpace(z)=='(' && schemaIsWatched(zName, nName) ){
        return 1;
      }
      bAfterName = !bQuoted && schemaIsNameKeyword(zName, nName);
    }else{
      bAfterName = c=='.';
      z++;
    }
  }
  return 0;
}

/*
** Scan schema zDb. *pzCalls gets a description of the first object whose
** SQL calls a quota function ("table 't'"), or NULL. When zTable names a
** quota table of that schema, *pzForeign gets the first trigger on one of
** its shadow tables (xIsShadow tells the suffixes), or a shadow name that
** is not a table, or NULL. Both are sqlite3_malloc'ed.
*/
int quotaSchemaScan(sqlite3 *db, const char *zDb, const char *zTable,
                    int (*xIsShadow)(const char*), char **pzCalls,
                    char **pzForeign){
  sqlite3_stmt *pStmt = 0;
  char *zSql;
  int rc;
  size_t nTable = zTable ? strlen(zTable) : 0;
  *pzCalls = 0;
  *pzForeign = 0;
  zSql = sqlite3_mprintf("SELECT type, name, tbl_name, sql FROM \"%w\".sqlite_schema",
                         zDb);
  if( zSql==0 ) return SQLITE_NOMEM;
  rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
  sqlite3_free(zSql);
  while( rc==SQLITE_OK && sqlite3_step(pStmt)==SQLITE_ROW ){
    const char *zType = (const char*)sqlite3_column_text(pStmt, 0);
    const char *zName = (const char*)sqlite3_column_text(pStmt, 1);
    const char *zTbl = (const char*)sqlite3_column_text(pStmt, 2);
    const char *zObjSql = (const char*)sqlite3_column_text(pStmt, 3);
    if( zType==0 || zName==0 || zTbl==0 ) continue;
    if( *pzCalls==0 && zObjSql && quotaSchemaCallsQuota(zObjSql) ){
      *pzCalls = sqlite3_mprintf("%s '%s'", zType, zName);
      if( *pzCalls==0 ) rc = SQLITE_NOMEM;
    }
    if( *pzForeign==0 && zTable ){
      int bTrigger = strcmp(zType, "trigger")==0;
      const char *zOn = bTrigger ? zTbl : zName;
      if( (bTrigger || strcmp(zType, "table")!=0)
       && strcmp(zType, "index")!=0
       && sqlite3_strnicmp(zOn, zTable, (int)nTable)==0 && zOn[nTable]=='_'
       && xIsShadow(&zOn[nTable+1]) ){
        *pzForeign = bTrigger
            ? sqlite3_mprintf("trigger '%s' on %s", zName, zOn)
            : sqlite3_mprintf("%s '%s' in place of a table", zType, zName);
        if( *pzForeign==0 ) rc = SQLITE_NOMEM;
      }
    }
  }
  if( rc==SQLITE_OK ){
    rc = sqlite3_finalize(pStmt);
  }else{
    sqlite3_finalize(pStmt);
  }
  if( rc!=SQLITE_OK ){
    sqlite3_free(*pzCalls);
    sqlite3_free(*pzForeign);
    *pzCalls = *pzForeign = 0;
  }
  return rc;
}
