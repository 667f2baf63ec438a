// A CPU-heavy tool, run in a worker thread by examples/isolated-tools.ts: counts primes by trial
// division, synchronously, and never looks at its signal. On the server's own event loop it would
// stall every other request; in a worker it stalls only its worker.

/** @type {import('mcpkit/node').IsolatedHandler<{ below: import('zod').ZodNumber }>} */
export default function countPrimes({ below }, ctx) {
  let count = 0;
  for (let n = 2; n < below; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
    if (n % 200_000 === 0) void ctx.progress(n, below);
  }
  return { below, count };
}
