/*
** quota-dqlite-node.c: a dqlite node that serves sqlite-quota.
**
** dqlite (https://dqlite.io) replicates SQLite with Raft: the leader node runs
** every statement on its own SQLite connection and ships the WAL frames the
** statement wrote to the other nodes. A quota call is therefore executed once,
** on the leader, with the leader's clock, and its effect is replicated
** byte for byte. The extension has to live in the node process (dqlite
** clients send SQL text and cannot load extensions), so this program
** compiles sqlite-quota in and registers it with sqlite3_auto_extension()
** before it creates the node: every connection dqlite opens then has the
** quota module and the quota_* functions.
**
** USAGE (from the repository root; `make dqlite` builds build/quota-dqlite-node)
**
**   build/quota-dqlite-node --id 1 --address 127.0.0.1:9001 --dir data/1
**   build/quota-dqlite-node --id 2 --address 127.0.0.1:9002 --dir data/2 \
**       --join 127.0.0.1:9001
**   build/quota-dqlite-node --id 3 --address 127.0.0.1:9003 --dir data/3 \
**       --join 127.0.0.1:9001,127.0.0.1:9002
**
**   --id N                 the node's Raft id, > 0. Node 1 bootstraps a new
**                          cluster (on its first start) with itself as the
**                          only voter. Give a node the same id every time.
**   --address HOST:PORT    where the node listens and where the other nodes
**                          and the clients reach it.
**   --dir DIR              its data directory (Raft log segments, snapshots,
**                          metadata); created if missing.
**   --join ADDR[,ADDR...]  members of the cluster to join: the node asks
**                          them for the leader, then asks the leader to add
**                          it and make it a voter (the client protocol's
**                          ADD and ASSIGN requests; the `dqlite` shell of
**                          go-dqlite has no command for that). A node that
**                          is already a voter (a restart with the same
**                          --join) skips both.
**   --latency-ms N         the one-way network latency dqlite tunes Raft to:
**                          heartbeat 1.5 N ms, election timeout 15 N ms
**                          (dqlite's default is a 3 s election timeout).
**                          On loopback, 20 gives a failover in well under a
**                          second.
**   --snapshot N           take a Raft snapshot every N log entries
**                          (dqlite's default: 1024), keeping max(N, 64)
**                          entries behind it.
**
** OUTPUT. When the node serves (and, with --join, is a voter), one line on
** stdout:
**     quota-dqlite-node: pid 1234 id 2 address 127.0.0.1:9002 ready
** When it stops: "quota-dqlite-node: pid 1234 stopped (signal 15)". Errors,
** and the commit guard's refusals, go to stderr.
**
** STOPPING. SIGTERM or SIGINT stops the node cleanly (dqlite_node_stop: no
** new connections, in-flight requests finish, the Raft log is closed) and
** the program exits 0. SIGKILL is what a crash looks like; the data
** directory is then recovered on the next start.
**
** Exit status: 0 after a clean stop, 1 on a start-up or join failure, 2 on
** a usage error.
**
** CLIENTS. The `dqlite` shell (Debian package go-dqlite) talks to the
** cluster; it finds the leader itself:
**     dqlite -s 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 quota \
**         "SELECT quota_consume('k', 1, 'req-1')"
** The shell runs each statement in a transaction (BEGIN, the statement,
** COMMIT) and prints the result only after the COMMIT has been replicated
** to a majority. Every client must do the same for the quota calls that
** write: this node refuses one made outside a transaction, which dqlite
** 1.11 would commit on the leader without replicating it (see THE COMMIT
** GUARD below, and doc/scaling.md).
*/
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>

#include <sqlite3.h>
#include <dqlite.h>
#include "quota.h"

#define PROG "quota-dqlite-node"

/*
** The dqlite client protocol, version 1: just enough of it to join a
** cluster. After a handshake (the protocol version as a little-endian
** uint64), each message is an 8-byte header (uint32 body length in 8-byte
** words, uint8 type, uint8 schema, uint16 unused) and a body of 64-bit
** little-endian words and NUL-terminated texts padded to 8 bytes.
*/
#define DQ_PROTOCOL        1
#define DQ_REQ_LEADER      0     /* body: uint64 0 */
#define DQ_REQ_ADD        12     /* body: uint64 id, text address */
#define DQ_REQ_ASSIGN     13     /* body: uint64 id, uint64 role */
#define DQ_REQ_CLUSTER    16     /* body: uint64 format (1: with roles) */
#define DQ_RESP_FAILURE    0     /* body: uint64 code, text message */
#define DQ_RESP_SERVER     1     /* body: uint64 id, text address */
#define DQ_RESP_SERVERS    3     /* body: uint64 n, n x (id, address, role) */
#define DQ_RESP_EMPTY      8     /* body: uint64 0 */
#define DQ_ROLE_VOTER      0

typedef struct DqMsg DqMsg;
struct DqMsg {
  unsigned char a[1024];         /* header + body */
  size_t n;                      /* bytes used in a[] */
};

static void dqInit(DqMsg *p){ memset(p, 0, sizeof(*p)); p->n = 8; }

static int dqPutU64(DqMsg *p, uint64_t v){
  int i;
  if( p->n+8>sizeof(p->a) ) return 1;
  for(i=0; i<8; i++) p->a[p->n++] = (unsigned char)(v>>(8*i));
  return 0;
}

static int dqPutText(DqMsg *p, const char *z){
  size_t n = strlen(z)+1;
  size_t nPad = (n+7)/8*8;
  if( p->n+nPad>sizeof(p->a) ) return 1;
  memset(&p->a[p->n], 0, nPad);
  memcpy(&p->a[p->n], z, n);
  p->n += nPad;
  return 0;
}

static uint64_t dqGetU64(const unsigned char *a){
  uint64_t v = 0;
  int i;
  for(i=7; i>=0; i--) v = (v<<8) | a[i];
  return v;
}

static int writeAll(int fd, const void *pBuf, size_t n){
  const unsigned char *a = pBuf;
  while( n>0 ){
    ssize_t k = send(fd, a, n, MSG_NOSIGNAL);
    if( k<0 && errno==EINTR ) continue;
    if( k<=0 ) return 1;
    a += k;
    n -= (size_t)k;
  }
  return 0;
}

static int readAll(int fd, void *pBuf, size_t n){
  unsigned char *a = pBuf;
  while( n>0 ){
    ssize_t k = recv(fd, a, n, 0);
    if( k<0 && errno==EINTR ) continue;
    if( k<=0 ) return 1;
    a += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Connect to HOST:PORT and send the handshake. Returns the socket or -1. */
static int dqConnect(const char *zAddr){
  char zHost[256];
  const char *zColon = strrchr(zAddr, ':');
  struct addrinfo hints, *pRes = 0, *p;
  struct timeval tv;
  unsigned char aHello[8];
  int fd = -1;
  int i;
  if( zColon==0 || (size_t)(zColon-zAddr)>=sizeof(zHost) ) return -1;
  memcpy(zHost, zAddr, (size_t)(zColon-zAddr));
  zHost[zColon-zAddr] = 0;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if( getaddrinfo(zHost, zColon+1, &hints, &pRes)!=0 ) return -1;
  for(p=pRes; p; p=p->ai_next){
    fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
    if( fd<0 ) continue;
    tv.tv_sec = 5;                /* a change waits for a catch-up round */
    tv.tv_usec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if( connect(fd, p->ai_addr, p->ai_addrlen)==0 ) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(pRes);
  if( fd<0 ) return -1;
  for(i=0; i<8; i++) aHello[i] = (unsigned char)((uint64_t)DQ_PROTOCOL>>(8*i));
  if( writeAll(fd, aHello, 8) ){ close(fd); return -1; }
  return fd;
}

/*
** Send request eType with the body in *pMsg on socket fd and read the
** response into *pMsg (its body at a[8..n)). Returns the response type, or
** -1 on an I/O error.
*/
static int dqRoundTrip(int fd, int eType, DqMsg *p){
  uint32_t nWord = (uint32_t)((p->n-8)/8);
  uint32_t nBody;
  int i;
  for(i=0; i<4; i++) p->a[i] = (unsigned char)(nWord>>(8*i));
  p->a[4] = (unsigned char)eType;
  p->a[5] = 0;
  p->a[6] = p->a[7] = 0;
  if( writeAll(fd, p->a, p->n) ) return -1;
  if( readAll(fd, p->a, 8) ) return -1;
  nBody = (uint32_t)p->a[0] | (uint32_t)p->a[1]<<8
        | (uint32_t)p->a[2]<<16 | (uint32_t)p->a[3]<<24;
  eType = p->a[4];
  if( (size_t)nBody*8 > sizeof(p->a)-8 ) return -1;
  if( readAll(fd, &p->a[8], (size_t)nBody*8) ) return -1;
  p->n = 8 + (size_t)nBody*8;
  p->a[sizeof(p->a)-1] = 0;     /* texts in the body end inside a[] */
  return eType;
}

/* The text of a FAILURE response, "code N: message", in zOut. */
static void dqFailure(const DqMsg *p, char *zOut, size_t nOut){
  if( p->n>=16 ){
    snprintf(zOut, nOut, "code %llu: %.400s",
             (unsigned long long)dqGetU64(&p->a[8]),
             p->n>16 ? (const char*)&p->a[16] : "");
  }else{
    snprintf(zOut, nOut, "malformed failure response");
  }
}

static void sleepMs(int ms){
  struct timespec ts;
  ts.tv_sec = ms/1000;
  ts.tv_nsec = (long)(ms%1000)*1000000L;
  while( nanosleep(&ts, &ts)!=0 && errno==EINTR ){}
}

/*
** Ask the members in zJoin (comma-separated) for the leader, then ask the
** leader to add node iId at zAddr and to make it a voter. Retries for up to
** about 30 seconds (an election may be under way). Returns 0 on success.
*/
static int joinCluster(const char *zJoin, uint64_t iId, const char *zAddr){
  char zLast[512] = "no member answered";
  int nTry;
  for(nTry=0; nTry<150; nTry++){
    char zLeader[256] = "";
    const char *z = zJoin;
    int step = 0;                 /* 0: not a member, 1: a non-voter, 2: a voter */
    int fd;
    DqMsg m;
    int rc;
    if( nTry>0 ) sleepMs(200);
    /* Find the leader: any member answers a LEADER request. */
    while( *z && zLeader[0]==0 ){
      char zMember[256];
      size_t n = strcspn(z, ",");
      if( n>0 && n<sizeof(zMember) ){
        memcpy(zMember, z, n);
        zMember[n] = 0;
        fd = dqConnect(zMember);
        if( fd>=0 ){
          dqInit(&m);
          dqPutU64(&m, 0);
          rc = dqRoundTrip(fd, DQ_REQ_LEADER, &m);
          if( rc==DQ_RESP_SERVER && m.n>16 && m.a[16]!=0 ){
            snprintf(zLeader, sizeof(zLeader), "%.255s", (const char*)&m.a[16]);
          }else if( rc==DQ_RESP_SERVER ){
            snprintf(zLast, sizeof(zLast), "%s knows no leader yet", zMember);
          }
          close(fd);
        }else{
          snprintf(zLast, sizeof(zLast), "cannot connect to %s", zMember);
        }
      }
      z += n;
      if( *z==',' ) z++;
    }
    if( zLeader[0]==0 ) continue;
    if( strcmp(zLeader, zAddr)==0 ) return 0;   /* already the leader */

    fd = dqConnect(zLeader);
    if( fd<0 ){
      snprintf(zLast, sizeof(zLast), "cannot connect to leader %s", zLeader);
      continue;
    }
    /* CLUSTER (format 1): n, then id, address, role per member. A node that
    ** is already a voter (a restart) has nothing to do; one that is a
    ** member but not a voter (an earlier join stopped half-way) goes on to
    ** ASSIGN. */
    dqInit(&m);
    dqPutU64(&m, 1);
    rc = dqRoundTrip(fd, DQ_REQ_CLUSTER, &m);
    if( rc==DQ_RESP_SERVERS && m.n>=16 ){
      uint64_t nServer = dqGetU64(&m.a[8]);
      size_t off = 16;
      uint64_t k;
      for(k=0; k<nServer && off+8<=m.n; k++){
        uint64_t id = dqGetU64(&m.a[off]);
        size_t nText = strlen((const char*)&m.a[off+8]) + 1;
        off += 8 + (nText+7)/8*8;
        if( off+8>m.n ) break;
        if( id==iId ){
          step = dqGetU64(&m.a[off])==DQ_ROLE_VOTER ? 2 : 1;
        }
        off += 8;
      }
    }else{
      if( rc==DQ_RESP_FAILURE ) dqFailure(&m, zLast, sizeof(zLast));
      close(fd);
      continue;
    }
    if( step==0 ){
      /* ADD: the node joins as a spare. */
      dqInit(&m);
      dqPutU64(&m, iId);
      dqPutText(&m, zAddr);
      rc = dqRoundTrip(fd, DQ_REQ_ADD, &m);
      if( rc==DQ_RESP_EMPTY ){
        step = 1;
      }else if( rc==DQ_RESP_FAILURE ){
        dqFailure(&m, zLast, sizeof(zLast));
      }else{
        snprintf(zLast, sizeof(zLast), "no answer to ADD from %s", zLeader);
      }
    }
    if( step==1 ){
      /* ASSIGN voter: the leader catches the node up, then promotes it. */
      dqInit(&m);
      dqPutU64(&m, iId);
      dqPutU64(&m, DQ_ROLE_VOTER);
      rc = dqRoundTrip(fd, DQ_REQ_ASSIGN, &m);
      if( rc==DQ_RESP_EMPTY ){
        step = 2;
      }else if( rc==DQ_RESP_FAILURE ){
        dqFailure(&m, zLast, sizeof(zLast));
      }else{
        snprintf(zLast, sizeof(zLast), "no answer to ASSIGN from %s", zLeader);
      }
    }
    close(fd);
    if( step==2 ) return 0;
  }
  fprintf(stderr, PROG ": cannot join the cluster through %s: %s\n",
          zJoin, zLast);
  return 1;
}

/*
** THE COMMIT GUARD. dqlite replicates the WAL frames of a statement only
** when the statement came as an EXEC request (or is the COMMIT of a
** transaction). A QUERY request is taken to be read-only, and
** `SELECT quota_consume(...)` is read-only to SQLite (sqlite3_stmt_readonly).
** A quota call that writes commits by itself when no transaction is open
** (its own BEGIN IMMEDIATE ... COMMIT). Sent as a QUERY outside a
** transaction, that commit happens on the leader and is never replicated:
** the client gets a ledger id, the leader then aborts on its next write
** (dqlite 1.11: "vfsFileShmLock: Assertion `wal->n_tx == 0' failed") and the
** charge is gone after the failover. Wrapped in BEGIN ... COMMIT (which is
** what the `dqlite` shell and go-dqlite's transactions send), the call only
** writes, and the client's COMMIT replicates it.
**
** So this node refuses the one commit that cannot be replicated: a commit
** made while a read-only statement that calls a writing quota function is
** running on the connection. SQLite then rolls that call back, and the
** client gets an error (code 531, SQLITE_CONSTRAINT_COMMITHOOK, "constraint
** failed") instead of a charge that disappears; the node logs the reason.
** A commit hook cannot tell a running statement from one a client stopped
** reading half-way, so a COMMIT that follows a half-read `SELECT
** quota_consume(...) FROM ...` in the same transaction is refused too.
** (dqlite's main branch polls the WAL after every request, queries
** included; there the guard is stricter than needed, but "every writing
** call in a transaction" is the rule that holds on every version.)
*/
static const char *const azWriter[] = {
  "quota_reserve", "quota_settle", "quota_release",
  "quota_consume", "quota_record", "quota_purge",
  "quota_reserve_upto", "quota_extend", "quota_grant", "quota_void",
};

static int isIdentChar(char c){
  return (c>='a' && c<='z') || (c>='A' && c<='Z') || (c>='0' && c<='9')
      || c=='_' || (c & 0x80)!=0;
}

/* True if zSql names a writing quota function (as a whole word). */
static int callsWriter(const char *zSql){
  size_t i, k;
  if( zSql==0 ) return 0;
  for(i=0; zSql[i]; i++){
    if( (zSql[i]!='q' && zSql[i]!='Q') || (i>0 && isIdentChar(zSql[i-1])) ){
      continue;
    }
    for(k=0; k<sizeof(azWriter)/sizeof(azWriter[0]); k++){
      size_t n = strlen(azWriter[k]);
      if( sqlite3_strnicmp(&zSql[i], azWriter[k], (int)n)==0
       && !isIdentChar(zSql[i+n]) ){
        return 1;
      }
    }
  }
  return 0;
}

static int guardCommit(void *pArg){
  sqlite3 *db = (sqlite3*)pArg;
  sqlite3_stmt *pStmt;
  for(pStmt=sqlite3_next_stmt(db, 0); pStmt; pStmt=sqlite3_next_stmt(db, pStmt)){
    const char *zSql = sqlite3_sql(pStmt);
    if( sqlite3_stmt_busy(pStmt) && sqlite3_stmt_readonly(pStmt)
     && callsWriter(zSql) ){
      fprintf(stderr, PROG ": refused a commit that dqlite would not "
          "replicate: %.200s ran outside a transaction; send BEGIN first "
          "(see doc/scaling.md)\n", zSql);
      return 1;
    }
  }
  return 0;
}

static int guardInit(sqlite3 *db, char **pzErrMsg,
                     const sqlite3_api_routines *pApi){
  (void)pzErrMsg;
  (void)pApi;
  sqlite3_commit_hook(db, guardCommit, db);
  return SQLITE_OK;
}

/* mkdir -p */
static int makeDirs(const char *zDir){
  char z[4096];
  size_t i, n = strlen(zDir);
  if( n==0 || n>=sizeof(z) ) return 1;
  memcpy(z, zDir, n+1);
  for(i=1; i<=n; i++){
    if( z[i]=='/' || z[i]==0 ){
      char c = z[i];
      z[i] = 0;
      if( mkdir(z, 0755)!=0 && errno!=EEXIST ) return 1;
      z[i] = c;
    }
  }
  return 0;
}

static void usage(void){
  fprintf(stderr,
    "usage: " PROG " --id N --address HOST:PORT --dir DIR\n"
    "           [--join ADDR[,ADDR...]] [--latency-ms N] [--snapshot N]\n");
  exit(2);
}

int main(int argc, char **argv){
  unsigned long long iId = 0;
  const char *zAddr = 0;
  const char *zDir = 0;
  const char *zJoin = 0;
  unsigned nLatency = 0;
  unsigned nSnapshot = 0;
  dqlite_node *pNode = 0;
  sigset_t sigs;
  int sig = 0;
  int rc;
  int i;

  for(i=1; i<argc; i++){
    const char *z = argv[i];
    if( z[0]=='-' && z[1]=='-' ) z++;
    if( i+1>=argc ) usage();
    if( strcmp(z, "-id")==0 ){
      char *zEnd;
      iId = strtoull(argv[++i], &zEnd, 10);
      if( *zEnd || iId==0 ) usage();
    }else if( strcmp(z, "-address")==0 ){
      zAddr = argv[++i];
    }else if( strcmp(z, "-dir")==0 ){
      zDir = argv[++i];
    }else if( strcmp(z, "-join")==0 ){
      zJoin = argv[++i];
    }else if( strcmp(z, "-latency-ms")==0 ){
      nLatency = (unsigned)atoi(argv[++i]);
      if( nLatency==0 ) usage();
    }else if( strcmp(z, "-snapshot")==0 ){
      nSnapshot = (unsigned)atoi(argv[++i]);
      if( nSnapshot==0 ) usage();
    }else{
      usage();
    }
  }
  if( iId==0 || zAddr==0 || zDir==0 ) usage();
  if( iId!=1 && zJoin==0 ){
    fprintf(stderr, PROG ": note: node %llu has no --join: it serves only "
            "once a member adds it (or if it already is one)\n", iId);
  }

  /* The signals that stop the node are taken with sigwait() below. Block
  ** them before dqlite starts its thread, which inherits the mask, so that
  ** they are never delivered to it. */
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, 0);
  signal(SIGPIPE, SIG_IGN);

  /* The extension: every connection opened from now on (dqlite's leader
  ** connections included) gets the quota module and functions. This must
  ** come before dqlite opens any connection, and from main(), not from a
  ** library constructor. */
  rc = sqlite3_auto_extension((void(*)(void))sqlite3_quota_init);
  if( rc==SQLITE_OK ){
    rc = sqlite3_auto_extension((void(*)(void))guardInit);
  }
  if( rc!=SQLITE_OK ){
    fprintf(stderr, PROG ": sqlite3_auto_extension: %s\n", sqlite3_errstr(rc));
    return 1;
  }

  if( makeDirs(zDir) ){
    fprintf(stderr, PROG ": cannot create %s: %s\n", zDir, strerror(errno));
    return 1;
  }
  rc = dqlite_node_create(iId, zAddr, zDir, &pNode);
  if( rc!=0 ){
    fprintf(stderr, PROG ": dqlite_node_create: %s\n",
            pNode ? dqlite_node_errmsg(pNode) : "failed");
    if( pNode ) dqlite_node_destroy(pNode);
    return 1;
  }
  rc = dqlite_node_set_bind_address(pNode, zAddr);
  if( rc==0 && nLatency ){
    rc = dqlite_node_set_network_latency_ms(pNode, nLatency);
  }
  if( rc==0 && nSnapshot ){
    rc = dqlite_node_set_snapshot_params(pNode, nSnapshot,
                                         nSnapshot<64 ? 64 : nSnapshot);
  }
  if( rc==0 ) rc = dqlite_node_start(pNode);
  if( rc!=0 ){
    fprintf(stderr, PROG ": cannot start node %llu at %s: %s\n",
            iId, zAddr, dqlite_node_errmsg(pNode));
    dqlite_node_destroy(pNode);
    return 1;
  }

  if( zJoin && joinCluster(zJoin, iId, zAddr) ){
    dqlite_node_stop(pNode);
    dqlite_node_destroy(pNode);
    return 1;
  }

  printf(PROG ": pid %ld id %llu address %s ready\n", (long)getpid(), iId, zAddr);
  fflush(stdout);

  while( sigwait(&sigs, &sig)!=0 ){}

  rc = dqlite_node_stop(pNode);
  if( rc!=0 ){
    fprintf(stderr, PROG ": dqlite_node_stop: %s\n", dqlite_node_errmsg(pNode));
  }
  dqlite_node_destroy(pNode);
  printf(PROG ": pid %ld stopped (signal %d)\n", (long)getpid(), sig);
  fflush(stdout);
  return rc==0 ? 0 : 1;
}
