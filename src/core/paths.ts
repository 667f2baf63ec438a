/**
 * A mount path in the one form the doors compare: a leading slash, no trailing one, and the root as
 * `''` (so `base + path` joins without doubling a slash). `'/'`, `''` → `''`; `'api/'` → `'/api'`.
 *
 * @example
 * ```ts
 * normalisePath('v1/'); // '/v1'
 * normalisePath('/') || '/'; // '/', where the root must be spelt
 * ```
 */
export function normalisePath(path: string): string {
  if (path === '' || path === '/') return '';
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.endsWith('/') ? withSlash.slice(0, -1) : withSlash;
}
