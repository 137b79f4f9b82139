/*
** replay.c: a main() for the fuzz targets of test/fuzz/, so that their
** corpora run without libFuzzer (any compiler, make test, valgrind):
**
**   build/fuzz_replay_X FILE-OR-DIRECTORY...
**
** Feeds every file (a directory: every regular file in it, in name order)
** to LLVMFuzzerTestOneInput, once. A target that finds a broken invariant
** abort()s, so the exit status is that of the first failing input; its name
** is printed before it runs when FUZZ_VERBOSE=1 (and always on stderr just
** before each input with FUZZ_TRACE=1, with the SQL transcript).
** Prints "replay: N inputs, N bytes" and exits 0 when all ran.
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *aData, size_t nData);

static int nInput = 0;
static long long nByte = 0;

static int runFile(const char *zPath){
  FILE *f = fopen(zPath, "rb");
  uint8_t *a = 0;
  size_t n = 0, nAlloc = 0;
  const char *zV = getenv("FUZZ_VERBOSE");
  const char *zT = getenv("FUZZ_TRACE");
  if( f==0 ){
    fprintf(stderr, "replay: cannot open %s\n", zPath);
    return 1;
  }
  for(;;){
    size_t got;
    if( n==nAlloc ){
      uint8_t *aNew;
      nAlloc = nAlloc ? nAlloc*2 : 4096;
      aNew = realloc(a, nAlloc);
      if( aNew==0 ){ fclose(f); free(a); return 1; }
      a = aNew;
    }
    got = fread(a+n, 1, nAlloc-n, f);
    if( got==0 ) break;
    n += got;
  }
  fclose(f);
  if( (zV && zV[0]=='1') ) printf("replay: %s\n", zPath);
  if( zT && zT[0]=='1' ) fprintf(stderr, "-- input %s (%d bytes)\n", zPath, (int)n);
  fflush(stdout);
  /* A private copy of exactly n bytes: ASan sees any read past the end. */
  {
    uint8_t *aCopy = malloc(n ? n : 1);
    if( aCopy==0 ){ free(a); return 1; }
    if( n ) memcpy(aCopy, a, n);
    free(a);
    LLVMFuzzerTestOneInput(aCopy, n);
    free(aCopy);
  }
  nInput++;
  nByte += (long long)n;
  return 0;
}

static int cmpName(const void *a, const void *b){
  return strcmp(*(char*const*)a, *(char*const*)b);
}

static int runPath(const char *zPath){
  struct stat st;
  if( stat(zPath, &st)!=0 ){
    fprintf(stderr, "replay: no such file or directory: %s\n", zPath);
    return 1;
  }
  if( S_ISDIR(st.st_mode) ){
    DIR *d = opendir(zPath);
    struct dirent *e;
    char **az = 0;
    int nName = 0, nAlloc = 0, i, rc = 0;
    if( d==0 ){
      fprintf(stderr, "replay: cannot read directory %s\n", zPath);
      return 1;
    }
    while( (e = readdir(d))!=0 ){
      if( e->d_name[0]=='.' ) continue;
      if( nName==nAlloc ){
        char **azNew;
        nAlloc = nAlloc ? nAlloc*2 : 64;
        azNew = realloc(az, sizeof(char*)*nAlloc);
        if( azNew==0 ){ closedir(d); return 1; }
        az = azNew;
      }
      az[nName] = malloc(strlen(zPath)+strlen(e->d_name)+2);
      if( az[nName]==0 ){ closedir(d); return 1; }
      sprintf(az[nName], "%s/%s", zPath, e->d_name);
      nName++;
    }
    closedir(d);
    qsort(az, nName, sizeof(char*), cmpName);
    for(i=0; i<nName; i++){
      if( rc==0 && stat(az[i], &st)==0 && S_ISREG(st.st_mode) ) rc = runFile(az[i]);
      free(az[i]);
    }
    free(az);
    return rc;
  }
  return runFile(zPath);
}

int main(int argc, char **argv){
  int i;
  if( argc<2 ){
    fprintf(stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
    return 2;
  }
  for(i=1; i<argc; i++){
    if( runPath(argv[i]) ) return 1;
  }
  printf("replay: %d inputs, %lld bytes\n", nInput, nByte);
  return 0;
}
