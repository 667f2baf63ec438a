/**
 * The one paginator of every list: MCP's list methods (`cursor`, the server's page size) and REST's
 * `?cursor=&limit=`. A cursor is the decimal offset of the page's first item, so any page can be
 * cut again from the list as it is now.
 */
import { McpKitError } from './errors.js';

/** Where a page starts and ends in its list, and the cursor of the page after it. */
export interface PageCut {
  /** Index of the page's first item. */
  readonly start: number;
  /** Index one past the page's last item. */
  readonly end: number;
  /** The cursor of the next page; `undefined` on the last page. */
  readonly nextCursor: string | undefined;
}

/** The items a REST list answers with: `{ items, nextCursor }`. */
export interface RestPage<T> {
  items: T[];
  nextCursor?: string;
}

/** How many items a REST page holds unless `limit` says otherwise. */
export const DEFAULT_PAGE_LIMIT = 100;
/** The largest `limit` a REST list takes. */
export const MAX_PAGE_LIMIT = 1000;

/**
 * Cuts the page `cursor` names from a list of `length` items: at most `limit` items (all the rest
 * without a limit). An absent cursor is the first page; a cursor that is not a whole number from 0 to
 * `length` names no page, and the answer is `undefined` (each door refuses it in its own words).
 *
 * @example
 * ```ts
 * cutPage(250, undefined, 100); // { start: 0, end: 100, nextCursor: '100' }
 * cutPage(250, '200', 100);     // { start: 200, end: 250, nextCursor: undefined }
 * cutPage(250, 'abc', 100);     // undefined
 * ```
 */
export function cutPage(
  length: number,
  cursor: string | undefined,
  limit: number | undefined,
): PageCut | undefined {
  const start = cursor === undefined ? 0 : /^\d{1,9}$/.test(cursor) ? Number(cursor) : Number.NaN;
  if (!(start >= 0 && start <= length)) return undefined;
  const end = limit === undefined ? length : Math.min(length, start + limit);
  return { start, end, nextCursor: end < length ? String(end) : undefined };
}

/**
 * The page of `items` a REST query asks for with `?cursor=&limit=` (`limit` from 1 to
 * {@link MAX_PAGE_LIMIT}, default {@link DEFAULT_PAGE_LIMIT}; an empty cursor is the first page).
 * Throws `INVALID_ARGUMENT` for a cursor or limit it cannot use.
 *
 * @example
 * ```ts
 * restPage(tools, new URLSearchParams('limit=2')); // { items: [tools[0], tools[1]], nextCursor: '2' }
 * ```
 */
export function restPage<T>(items: readonly T[], query: URLSearchParams): RestPage<T> {
  const limitParam = query.get('limit');
  const limit =
    limitParam === null ? DEFAULT_PAGE_LIMIT : /^\d{1,4}$/.test(limitParam) ? Number(limitParam) : Number.NaN;
  const usable = limit >= 1 && limit <= MAX_PAGE_LIMIT;
  // The cursor is judged first, as it always was: a bad cursor is reported over a bad limit.
  const cut = cutPage(items.length, query.get('cursor') || undefined, usable ? limit : undefined);
  if (!cut) throw new McpKitError('INVALID_ARGUMENT', 'cursor is not valid');
  if (!usable) throw new McpKitError('INVALID_ARGUMENT', `limit must be 1-${MAX_PAGE_LIMIT}`);
  const page = items.slice(cut.start, cut.end);
  return cut.nextCursor === undefined ? { items: page } : { items: page, nextCursor: cut.nextCursor };
}
