// The isolated tools of bench/isolation.ts (plain JavaScript: loaded by workers and child processes).

/** Echo. */
export default function echo({ text }) {
  return text;
}

/** Burns CPU for `ms` milliseconds, deaf to its signal. */
export function burn({ ms }) {
  const end = Date.now() + ms;
  let spins = 0;
  while (Date.now() < end) spins++;
  return { spins };
}
