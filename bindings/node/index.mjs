// ESM entry: the same module instance as index.js.
import sqliteQuota from './index.js';

export const { getLoadablePath, load, entryPoint, version } = sqliteQuota;
export default sqliteQuota;
