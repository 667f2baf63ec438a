// A tool with a memory leak, run by examples/isolated-tools.ts in a child process with a 64 MB heap:
// each call keeps what it built, so its process soon reaches its limit and is replaced.
const kept = [];

export default function remember({ items }) {
  for (let i = 0; i < items; i++) kept.push({ i, padding: 'x'.repeat(1_000) });
  return { remembered: kept.length };
}
