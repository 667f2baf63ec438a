import { fromJsonSchema, type StandardSchemaV1 } from '@modelcontextprotocol/server';
import { z } from 'zod';

/** A JSON Schema document as plain data. */
export type JsonSchema = { [key: string]: unknown };

/**
 * What a schema option accepts: a zod schema, a raw zod shape (`{ city: z.string() }`), any Standard
 * Schema that can describe itself as JSON Schema, or plain JSON Schema (as arrives over REST).
 */
export type SchemaInput = StandardSchemaV1 | Record<string, StandardSchemaV1> | JsonSchema;

/** The input type a schema validates to, for typed handlers. */
export type InferSchema<T> = T extends StandardSchemaV1
  ? StandardSchemaV1.InferOutput<T>
  : T extends Record<string, StandardSchemaV1>
    ? { [K in keyof T]: StandardSchemaV1.InferOutput<T[K]> }
    : Record<string, unknown>;

/** One field that failed validation. */
export interface ValidationIssue {
  /** Dotted path to the field (`""` for the value as a whole). */
  path: string;
  message: string;
}

export type ValidationOutcome<T = unknown> =
  | { ok: true; value: T }
  | { ok: false; issues: ValidationIssue[] };

/** A schema compiled once: its JSON Schema (computed at registration) and a validator. */
export interface CompiledSchema {
  readonly jsonSchema: JsonSchema;
  validate(value: unknown): ValidationOutcome | Promise<ValidationOutcome>;
}

function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    '~standard' in value &&
    typeof (value as StandardSchemaV1)['~standard']?.validate === 'function'
  );
}

function isRawShape(value: object): value is Record<string, StandardSchemaV1> {
  const entries = Object.values(value);
  return entries.length > 0 && entries.every(isStandardSchema);
}

function toIssues(issues: ReadonlyArray<StandardSchemaV1.Issue>): ValidationIssue[] {
  return issues.map((issue) => {
    let path = (issue.path ?? [])
      .map((segment) => String(typeof segment === 'object' ? segment.key : segment))
      .join('.');
    let message = issue.message;
    // The SDK's JSON Schema validator reports `data/a/b must be string`: lift the path out.
    const match = /^data((?:\/[^\s]*)?)\s+(.*)$/s.exec(message);
    if (!path && match) {
      path = (match[1] ?? '').split('/').filter(Boolean).join('.');
      message = match[2] ?? message;
    }
    return { path, message };
  });
}

function fromStandard(schema: StandardSchemaV1): CompiledSchema['validate'] {
  return (value) => {
    const result = schema['~standard'].validate(value);
    const settle = (r: StandardSchemaV1.Result<unknown>): ValidationOutcome =>
      r.issues ? { ok: false, issues: toIssues(r.issues) } : { ok: true, value: r.value };
    return result instanceof Promise ? result.then(settle) : settle(result);
  };
}

function jsonSchemaOf(schema: StandardSchemaV1, io: 'input' | 'output'): JsonSchema {
  let json: JsonSchema;
  if ('_zod' in schema) {
    json = z.toJSONSchema(schema as unknown as z.ZodType, { io, unrepresentable: 'any' }) as JsonSchema;
  } else {
    const converter = (
      schema['~standard'] as { jsonSchema?: Record<string, (o: { target: string }) => JsonSchema> }
    ).jsonSchema;
    const convert = converter?.[io];
    if (typeof convert !== 'function') {
      throw new TypeError(
        'The schema cannot describe itself as JSON Schema; pass a zod schema or JSON Schema',
      );
    }
    json = convert({ target: 'draft-2020-12' });
  }
  const { $schema: _ignored, ...rest } = json;
  return rest;
}

/**
 * Compiles a schema option once. Object schemas are required at the root for tool input (MCP asks
 * for `type: "object"`); `kind` names the option in error messages.
 */
export function compileSchema(
  input: SchemaInput,
  kind: string,
  io: 'input' | 'output' = 'input',
): CompiledSchema {
  if (typeof input !== 'object' || input === null) {
    throw new TypeError(`${kind} must be a zod schema, a zod shape or a JSON Schema object`);
  }
  if (isStandardSchema(input)) {
    return { jsonSchema: jsonSchemaOf(input, io), validate: fromStandard(input) };
  }
  if (isRawShape(input)) {
    const object = z.object(input as unknown as z.ZodRawShape);
    return { jsonSchema: jsonSchemaOf(object, io), validate: fromStandard(object) };
  }
  // Plain JSON Schema is served exactly as given ($schema, $defs, x- keywords and all). Compiling a
  // validator costs ~0.7 ms, so it happens on first use (and identical schemas share one): a server
  // with thousands of tools starts in milliseconds.
  const json = structuredClone(input) as JsonSchema;
  checkJsonSchemaShape(json, kind);
  let validate: CompiledSchema['validate'] | undefined;
  return {
    jsonSchema: json,
    validate: (value) => {
      validate ??= fromStandard(compiledJsonSchema(json, kind));
      return validate(value);
    },
  };
}

const JSON_TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);
const compiled = new Map<string, StandardSchemaV1>();
const MAX_COMPILED = 1000;

/** Cheap structural checks at registration; the full compile comes on first use. */
function checkJsonSchemaShape(json: JsonSchema, kind: string): void {
  const type = json.type;
  const types = Array.isArray(type) ? type : type === undefined ? [] : [type];
  if (!types.every((t) => typeof t === 'string' && JSON_TYPES.has(t))) {
    throw new TypeError(
      `${kind} is not a valid JSON Schema: type must be one of ${[...JSON_TYPES].join(', ')}`,
    );
  }
  if (json.properties !== undefined && (typeof json.properties !== 'object' || json.properties === null)) {
    throw new TypeError(`${kind} is not a valid JSON Schema: properties must be an object`);
  }
  if (
    json.required !== undefined &&
    !(Array.isArray(json.required) && json.required.every((r) => typeof r === 'string'))
  ) {
    throw new TypeError(`${kind} is not a valid JSON Schema: required must be an array of strings`);
  }
}

function compiledJsonSchema(json: JsonSchema, kind: string): StandardSchemaV1 {
  const key = JSON.stringify(json);
  let standard = compiled.get(key);
  if (!standard) {
    try {
      standard = fromJsonSchema(json as never);
    } catch (error) {
      throw new TypeError(`${kind} is not a valid JSON Schema: ${(error as Error).message}`);
    }
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
    compiled.set(key, standard);
  }
  return standard;
}

/** The schema used when a tool declares no input schema: any object. */
export const EMPTY_OBJECT_SCHEMA: CompiledSchema = {
  jsonSchema: { type: 'object', properties: {} },
  validate: (value) =>
    value === undefined || (typeof value === 'object' && value !== null && !Array.isArray(value))
      ? { ok: true, value: value ?? {} }
      : { ok: false, issues: [{ path: '', message: 'Arguments must be an object' }] },
};

/** Formats issues as one line per field: `city: Required`. */
export function formatIssues(issues: ValidationIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
}
