'use strict';
// sqlite-quota for Node: where the loadable extension is, and a loader for
// better-sqlite3, node:sqlite (Node 22.13+) and libsql database objects.
//
//   const { load } = require('sqlite-quota');
//   load(db);                    // db: better-sqlite3 / libsql Database, or
//                                // node:sqlite DatabaseSync opened with
//                                // { allowExtension: true }
//   db.prepare("SELECT quota_reserve(?, ?, ?) AS hold").get('sk-1', 4000, 'req-1');
const fs = require('node:fs');
const path = require('node:path');

const platform = `${process.platform}-${process.arch}`;
const suffix = process.platform === 'win32' ? '.dll'
  : process.platform === 'darwin' ? '.dylib' : '.so';
// The file is named quota so that SQLite derives the entry point
// sqlite3_quota_init from its name: no entry point needs to be passed.
const entryPoint = 'sqlite3_quota_init';
const version = require('./package.json').version;

// Absolute path of the loadable library for this platform, suffix included.
function getLoadablePath() {
  const p = path.join(__dirname, 'dist', platform, 'quota' + suffix);
  if (!fs.existsSync(p)) {
    let have = [];
    try { have = fs.readdirSync(path.join(__dirname, 'dist')); } catch (e) { /* none */ }
    throw new Error(`sqlite-quota: this package has no build for ${platform}` +
      ` (it has: ${have.join(', ') || 'none'}); build quota${suffix} from the` +
      ' sources and load it with db.loadExtension(path)');
  }
  return p;
}

// One process can serve the extension to one SQLite library only: the
// library that loaded it last is the one its functions call into, so a
// connection of another SQLite library (better-sqlite3 and node:sqlite
// each carry their own) would call into the wrong one and crash.  The
// library is told apart by the class that owns loadExtension.
let loadedInto = null;
function libraryOf(db) {
  let p = Object.getPrototypeOf(db);
  while (p && !Object.prototype.hasOwnProperty.call(p, 'loadExtension')) {
    p = Object.getPrototypeOf(p);
  }
  return p || db;
}
function nameOf(lib) {
  return (lib && lib.constructor && lib.constructor.name) || 'another database class';
}

// Loads the extension into db (anything with loadExtension(path)) and
// returns db.
function load(db) {
  if (db === null || typeof db !== 'object' || typeof db.loadExtension !== 'function') {
    throw new TypeError('sqlite-quota: load(db) needs a database object with' +
      ' loadExtension() (better-sqlite3, libsql, or node:sqlite opened with' +
      ' { allowExtension: true })');
  }
  const lib = libraryOf(db);
  if (loadedInto !== null && loadedInto !== lib) {
    throw new Error(`sqlite-quota: already loaded into ${nameOf(loadedInto)}'s SQLite` +
      ` in this process; it cannot also serve ${nameOf(lib)}, which carries another` +
      ' SQLite library (one SQLite library per process)');
  }
  try {
    db.loadExtension(getLoadablePath());
  } catch (e) {
    if (e && e.code === 'ERR_INVALID_STATE') {
      e.message += ' (node:sqlite: open the database with' +
        ' new DatabaseSync(path, { allowExtension: true }))';
    }
    throw e;
  }
  loadedInto = lib;
  return db;
}

module.exports = { getLoadablePath, load, entryPoint, version };
