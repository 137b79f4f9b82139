/*
** faultbuf.h: the growable text buffer of the fault drivers (faultutil.h,
** covfault.c). Define DRIVER_PROG (the driver's name, for the one message)
** before including it. Static functions only.
*/
#ifndef QUOTA_FAULTBUF_H
#define QUOTA_FAULTBUF_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*--------------------------------------------------------------------------
** Small growable text buffer (system malloc: the driver's own memory is
** never counted by, nor failed by, oomtest's SQLite allocator wrapper).
*/
typedef struct Buf Buf;
struct Buf {
  char *z;                        /* Text, always NUL-terminated when non-NULL */
  size_t n;                       /* Bytes used, excluding the NUL */
  size_t nAlloc;                  /* Bytes allocated */
};

static void bufAppend(Buf *p, const char *z, size_t n){
  if( p->z==0 || p->n+n+1>p->nAlloc ){
    size_t nNew = (p->nAlloc+n+1)*2;
    char *zNew = realloc(p->z, nNew);
    if( zNew==0 ){ fprintf(stderr, DRIVER_PROG ": out of system memory\n"); exit(2); }
    p->z = zNew;
    p->nAlloc = nNew;
  }
  if( n>0 ) memcpy(p->z+p->n, z, n);
  p->n += n;
  p->z[p->n] = 0;
}
static void bufPrintf(Buf *p, const char *zFmt, ...){
  char zTmp[512];
  va_list ap;
  int n;
  va_start(ap, zFmt);
  n = vsnprintf(zTmp, sizeof(zTmp), zFmt, ap);
  va_end(ap);
  if( n<0 ) return;
  if( (size_t)n>=sizeof(zTmp) ) n = (int)sizeof(zTmp)-1;
  bufAppend(p, zTmp, (size_t)n);
}
static void bufReset(Buf *p){ p->n = 0; if( p->z ) p->z[0] = 0; }
static void bufFree(Buf *p){ free(p->z); memset(p, 0, sizeof(*p)); }
static const char *bufText(const Buf *p){ return p->z ? p->z : ""; }

#endif /* QUOTA_FAULTBUF_H */
