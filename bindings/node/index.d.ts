/** Any database object with loadExtension(path): better-sqlite3 and libsql
 * `Database`, node:sqlite `DatabaseSync` opened with `{ allowExtension: true }`. */
export interface LoadableDatabase {
  loadExtension(path: string, entryPoint?: string): unknown;
}

/** Absolute path of the loadable library (quota.so) for this platform.
 * Throws when the package carries no build for it. */
export declare function getLoadablePath(): string;

/** Loads sqlite-quota into `db` and returns `db`. Throws the client's error
 * when loading fails (node:sqlite: opened without allowExtension), and when
 * the extension already serves another SQLite library in this process. */
export declare function load<T extends LoadableDatabase>(db: T): T;

/** The entry point, derived by SQLite from the file name. */
export declare const entryPoint: 'sqlite3_quota_init';

/** The package's version: the extension's quota_version(). */
export declare const version: string;

declare const sqliteQuota: {
  getLoadablePath: typeof getLoadablePath;
  load: typeof load;
  entryPoint: typeof entryPoint;
  version: typeof version;
};
export default sqliteQuota;
