/**
 * The base path mcpkit serves under inside a framework: `base` (`http.basePath`) below the mount
 * point `mount` the framework routed by (Express's `req.baseUrl`, Fastify's prefix, Hono's route).
 * Every adapter stacks the two the same way, so `http.basePath: '/v1'` under `/api` is `/api/v1`
 * on all of them.
 */
export function joinPaths(mount: string, base: string): string {
  const inner = base === '' || base === '/' ? '' : base.startsWith('/') ? base : `/${base}`;
  return `${mount.replace(/\/+$/, '')}${inner}`;
}
