/**
 * The demo catalog the quickstart and stdio examples serve: a few tools, resources and prompts that
 * are genuinely useful to poke at from an MCP client.
 */
import { McpKitError, type McpKitServer } from 'mcpkit';
import { z } from 'zod';

const startedAt = new Date();

/** Registers the demo tools, resources and prompts on `server`. */
export function registerDemoCatalog(server: McpKitServer): void {
  server.tools.register({
    name: 'calculate',
    title: 'Calculator',
    description: 'Evaluate an arithmetic expression with + - * / % ^ and parentheses, e.g. "2 * (3 + 4)".',
    inputSchema: { expression: z.string().min(1).max(500).describe('The expression to evaluate') },
    outputSchema: { expression: z.string(), value: z.number() },
    annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    handler: ({ expression }) => ({ expression, value: evaluate(expression) }),
  });

  server.tools.register({
    name: 'convert_units',
    title: 'Unit converter',
    description: 'Convert a value between length, mass or temperature units.',
    inputSchema: {
      value: z.number(),
      from: z.enum(['m', 'km', 'mi', 'ft', 'in', 'kg', 'lb', 'g', 'oz', 'c', 'f', 'k']),
      to: z.enum(['m', 'km', 'mi', 'ft', 'in', 'kg', 'lb', 'g', 'oz', 'c', 'f', 'k']),
    },
    annotations: { readOnlyHint: true, idempotentHint: true },
    handler: ({ value, from, to }) => `${value} ${from} = ${round(convert(value, from, to))} ${to}`,
  });

  server.tools.register({
    name: 'text_stats',
    title: 'Text statistics',
    description: 'Count characters, words, lines and sentences, and estimate reading time.',
    inputSchema: { text: z.string().max(1_000_000) },
    annotations: { readOnlyHint: true, idempotentHint: true },
    handler: ({ text }) => {
      const words = text.split(/\s+/).filter(Boolean).length;
      return {
        characters: text.length,
        words,
        lines: text === '' ? 0 : text.split(/\r?\n/).length,
        sentences: (text.match(/[.!?]+(\s|$)/g) ?? []).length,
        readingMinutes: round(words / 230),
      };
    },
  });

  server.tools.register({
    name: 'countdown',
    title: 'Countdown with progress',
    description: 'Count down from n, one step every interval (ms), reporting progress. Cancellable.',
    inputSchema: {
      n: z.number().int().min(1).max(100).default(5),
      intervalMs: z.number().int().min(0).max(5000).default(200),
    },
    handler: async ({ n, intervalMs }, ctx) => {
      for (let i = 1; i <= n; i++) {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, intervalMs);
          ctx.signal.addEventListener(
            'abort',
            () => {
              clearTimeout(timer);
              reject(ctx.signal.reason);
            },
            { once: true },
          );
        });
        await ctx.progress(i, n, `${n - i} to go`);
      }
      return 'Lift-off!';
    },
  });

  server.resources.register({
    uri: 'info://server',
    name: 'server-info',
    title: 'Server information',
    description: 'Name, version, start time and catalog sizes of this server.',
    mimeType: 'application/json',
    read: () =>
      JSON.stringify(
        {
          name: server.info.name,
          version: server.info.version,
          startedAt: startedAt.toISOString(),
          tools: server.tools.size,
          resources: server.resources.size,
          prompts: server.prompts.size,
        },
        null,
        2,
      ),
  });

  server.resources.register({
    uriTemplate: 'units://{category}',
    name: 'units',
    title: 'Units by category',
    description: 'The units convert_units understands, for one category: length, mass or temperature.',
    mimeType: 'application/json',
    list: () =>
      Object.keys(UNITS).map((category) => ({ uri: `units://${category}`, name: `units-${category}` })),
    complete: { category: (value) => Object.keys(UNITS).filter((c) => c.startsWith(value)) },
    read: (_uri, { category }) => {
      const units = UNITS[String(category) as keyof typeof UNITS];
      if (!units) throw new Error(`Unknown category ${String(category)}`);
      return JSON.stringify(units);
    },
  });

  server.prompts.register({
    name: 'explain_calculation',
    title: 'Explain a calculation',
    description: 'Ask the model to work through an arithmetic expression step by step.',
    arguments: [{ name: 'expression', description: 'The expression to explain', required: true }],
    messages: [
      {
        role: 'user',
        content: 'Work through {{expression}} step by step, then check the result with the calculate tool.',
      },
    ],
  });

  server.prompts.register({
    name: 'summarise',
    title: 'Summarise text',
    description: 'Summarise text in a given style.',
    arguments: {
      text: z.string().describe('The text to summarise'),
      style: z.string().optional().describe('bullet points, one sentence, or executive'),
    },
    complete: {
      style: (value) => ['bullet points', 'one sentence', 'executive'].filter((s) => s.startsWith(value)),
    },
    render: ({ text, style }) => `Summarise the following as ${style ?? 'a short paragraph'}:\n\n${text}`,
  });
}

const UNITS = {
  length: ['m', 'km', 'mi', 'ft', 'in'],
  mass: ['kg', 'lb', 'g', 'oz'],
  temperature: ['c', 'f', 'k'],
} as const;

const TO_BASE: Record<string, number> = {
  m: 1,
  km: 1000,
  mi: 1609.344,
  ft: 0.3048,
  in: 0.0254,
  kg: 1,
  lb: 0.45359237,
  g: 0.001,
  oz: 0.028349523125,
};

function categoryOf(unit: string): string {
  for (const [category, units] of Object.entries(UNITS))
    if ((units as readonly string[]).includes(unit)) return category;
  throw new McpKitError('INVALID_ARGUMENT', `Unknown unit ${unit}`);
}

function convert(value: number, from: string, to: string): number {
  if (categoryOf(from) !== categoryOf(to))
    throw new McpKitError('INVALID_ARGUMENT', `Cannot convert ${from} to ${to}: different quantities`);
  if (categoryOf(from) === 'temperature') {
    const kelvin = from === 'c' ? value + 273.15 : from === 'f' ? ((value - 32) * 5) / 9 + 273.15 : value;
    return to === 'c' ? kelvin - 273.15 : to === 'f' ? ((kelvin - 273.15) * 9) / 5 + 32 : kelvin;
  }
  return (value * TO_BASE[from]!) / TO_BASE[to]!;
}

function round(n: number): number {
  return Math.round(n * 1e6) / 1e6;
}

/**
 * A small recursive-descent evaluator: no eval, bounded input. An expression it cannot evaluate is
 * the caller's mistake: `INVALID_ARGUMENT`, answered at once and never retried.
 */
export function evaluate(expression: string): number {
  const invalid = (reason: string) => new McpKitError('INVALID_ARGUMENT', `Invalid expression: ${reason}`);
  const tokens = expression.match(/\d+(?:\.\d+)?(?:e[+-]?\d+)?|[-+*/%^()]|\S/gi) ?? [];
  let pos = 0;
  const peek = () => tokens[pos];
  const next = () => tokens[pos++];
  const primary = (): number => {
    const token = next();
    if (token === '(') {
      const value = sum();
      if (next() !== ')') throw invalid('expected ")"');
      return value;
    }
    if (token === '-') return -primary();
    if (token === '+') return primary();
    if (token !== undefined && /^\d/.test(token)) return Number(token);
    throw invalid(
      token === undefined ? 'unexpected end of expression' : `unexpected ${JSON.stringify(token)}`,
    );
  };
  const power = (): number => {
    const base = primary();
    if (peek() === '^') {
      next();
      return base ** power();
    }
    return base;
  };
  const product = (): number => {
    let value = power();
    for (let op = peek(); op === '*' || op === '/' || op === '%'; op = peek()) {
      next();
      const rhs = power();
      value = op === '*' ? value * rhs : op === '/' ? value / rhs : value % rhs;
    }
    return value;
  };
  const sum = (): number => {
    let value = product();
    for (let op = peek(); op === '+' || op === '-'; op = peek()) {
      next();
      const rhs = product();
      value = op === '+' ? value + rhs : value - rhs;
    }
    return value;
  };
  const value = sum();
  if (pos !== tokens.length) throw invalid(`unexpected ${JSON.stringify(tokens[pos])}`);
  if (!Number.isFinite(value)) throw invalid('the result is not a finite number');
  return value;
}
