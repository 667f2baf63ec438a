/**
 * Checks of numeric options, with one wording for every component: the option's name, what it
 * takes, and the value given.
 */

/** `value` if it is a whole number of at least `min`; else a `TypeError` naming `name`. */
function integerAtLeast(name: string, value: number, min: 0 | 1): number {
  if (Number.isInteger(value) && value >= min) return value;
  throw new TypeError(
    `${name} must be a ${min === 0 ? 'non-negative' : 'positive'} integer (got ${JSON.stringify(value)})`,
  );
}

/**
 * `value`, or `fallback` when it is `undefined`; throws a `TypeError` naming `name` when it is not a
 * whole number of at least 1.
 *
 * @example
 * ```ts
 * positiveInteger('maxInFlight', options.maxInFlight, 100);
 * // throws TypeError: maxInFlight must be a positive integer (got 0)
 * ```
 */
export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  return value === undefined ? fallback : integerAtLeast(name, value, 1);
}

/**
 * `value`, or `fallback` when it is `undefined`; throws a `TypeError` naming `name` when it is not a
 * whole number of at least 0 (for options where `0` turns something off).
 *
 * @example
 * ```ts
 * nonNegativeInteger('heartbeatMs', options.heartbeatMs, 30_000); // 0 disables the heartbeat
 * ```
 */
export function nonNegativeInteger(name: string, value: number | undefined, fallback: number): number {
  return value === undefined ? fallback : integerAtLeast(name, value, 0);
}
