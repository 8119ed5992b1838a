/** Shared typing for named statement parameters (the store opens SQLite in strict mode: `$name` binds `name`). */
export type NamedParams = Record<string, string | number | bigint | boolean | null>;
