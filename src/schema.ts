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

/** A schema compiled once: its JSON Schema (computed once, at registration or on first read) and a validator. */
export interface CompiledSchema {
  readonly jsonSchema: JsonSchema;
  /** Whether the schema describes an object at its root (known without reading `jsonSchema`). */
  readonly objectRoot: boolean;
  /** Why a deferred conversion failed (then `jsonSchema` is the fallback `{ type: 'object' }`). */
  readonly conversionError?: unknown;
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

function settleStandard(result: StandardSchemaV1.Result<unknown>): ValidationOutcome {
  return result.issues ? { ok: false, issues: toIssues(result.issues) } : { ok: true, value: result.value };
}

function validateStandard(
  schema: StandardSchemaV1,
  value: unknown,
): ValidationOutcome | Promise<ValidationOutcome> {
  const result = schema['~standard'].validate(value);
  return result instanceof Promise ? result.then(settleStandard) : settleStandard(result);
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

/** The root type a zod (v4) schema declares, read without converting it: `object`, `string`, … */
function zodRootType(schema: StandardSchemaV1): string | undefined {
  const def = (schema as { _zod?: { def?: { type?: unknown } } })._zod?.def;
  return typeof def?.type === 'string' ? def.type : undefined;
}

/**
 * A zod object schema whose JSON Schema is converted on first read (one object per schema, so
 * registering thousands of tools allocates little). A conversion that fails (zod refuses some
 * schemas, two fields sharing a `.meta({ id })` for one) lists what the schema is known to be, an
 * object, and keeps the error in `conversionError` for the catalog to report. Values are still
 * checked by zod itself.
 */
class LazyObjectSchema implements CompiledSchema {
  readonly objectRoot = true;
  readonly #schema: StandardSchemaV1;
  readonly #io: 'input' | 'output';
  #json: JsonSchema | undefined;
  conversionError: unknown;

  constructor(schema: StandardSchemaV1, io: 'input' | 'output') {
    this.#schema = schema;
    this.#io = io;
  }

  get jsonSchema(): JsonSchema {
    if (this.#json === undefined) {
      try {
        this.#json = jsonSchemaOf(this.#schema, this.#io);
      } catch (error) {
        this.conversionError = error;
        this.#json = { type: 'object' };
      }
    }
    return this.#json;
  }

  validate(value: unknown): ValidationOutcome | Promise<ValidationOutcome> {
    return validateStandard(this.#schema, value);
  }
}

function fromStandardSchema(schema: StandardSchemaV1, io: 'input' | 'output'): CompiledSchema {
  // A zod object needs no conversion to know it describes an object, so its JSON Schema waits
  // until the tool is first listed: 10,000 tools register in milliseconds. Anything else converts
  // now, so a schema that cannot describe itself fails at registration, where its author sees it.
  if (zodRootType(schema) === 'object') return new LazyObjectSchema(schema, io);
  const jsonSchema = jsonSchemaOf(schema, io);
  return {
    jsonSchema,
    objectRoot: jsonSchema.type === 'object',
    validate: (value) => validateStandard(schema, value),
  };
}

/**
 * Compiles a schema option once. Object schemas are required at the root for tool input (MCP asks
 * for `type: "object"`); `kind` names the option in error messages. The JSON Schema of a zod object
 * is computed when first read.
 */
export function compileSchema(
  input: SchemaInput,
  kind: string,
  io: 'input' | 'output' = 'input',
): CompiledSchema {
  if (typeof input !== 'object' || input === null) {
    throw new TypeError(`${kind} must be a zod schema, a zod shape or a JSON Schema object`);
  }
  if (isStandardSchema(input)) return fromStandardSchema(input, io);
  if (isRawShape(input)) return fromStandardSchema(z.object(input as unknown as z.ZodRawShape), io);
  // Plain JSON Schema is served exactly as given ($schema, $defs, x- keywords and all). Compiling a
  // validator costs ~0.7 ms, so it happens on first use (and identical schemas share one): a server
  // with thousands of tools starts in milliseconds.
  const json = structuredClone(input) as JsonSchema;
  checkJsonSchemaShape(json, kind);
  let standard: StandardSchemaV1 | undefined;
  return {
    jsonSchema: json,
    objectRoot: json.type === 'object',
    validate: (value) => {
      standard ??= compiledJsonSchema(json, kind);
      return validateStandard(standard, value);
    },
  };
}

/**
 * A JSON Schema that passed registration's structural checks but could not be compiled into a
 * validator (its message names the schema's own fault, safe to show a caller).
 */
export class SchemaCompileError extends TypeError {}

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
      throw new SchemaCompileError(`${kind} is not a valid JSON Schema: ${(error as Error).message}`);
    }
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
    compiled.set(key, standard);
  }
  return standard;
}

/**
 * Whether `value` is `{}`: a zod raw shape without fields, which is how a tool without arguments
 * writes its input (plain JSON Schema would read it as "anything", which a tool's input cannot be).
 */
export function isEmptyShape(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return (prototype === Object.prototype || prototype === null) && Reflect.ownKeys(value).length === 0;
}

/**
 * The input of a tool declared with `inputSchema: {}`: `z.object({})`, like any other zod shape.
 * It lists as `{ type: 'object', properties: {} }`, accepts `{}` or no arguments, and drops
 * arguments it does not declare, as zod shapes do.
 */
export const EMPTY_SHAPE_SCHEMA: CompiledSchema = new LazyObjectSchema(z.object({}), 'input');

/** The schema used when a tool declares no input schema: any object. */
export const EMPTY_OBJECT_SCHEMA: CompiledSchema = {
  jsonSchema: { type: 'object', properties: {} },
  objectRoot: true,
  validate: (value) =>
    value === undefined || (typeof value === 'object' && value !== null && !Array.isArray(value))
      ? { ok: true, value: value ?? {} }
      : { ok: false, issues: [{ path: '', message: 'Arguments must be an object' }] },
};

/**
 * Whether a handler threw a validation failure: anything carrying Standard Schema `issues` (a zod
 * `ZodError`, valibot's `ValiError`, `SchemaError` from `@standard-schema/utils`), or an error named
 * `ValidationError` (Joi, Yup, Mongoose, …). Such a failure comes from the input, so the executor
 * answers it `INVALID_ARGUMENT` and never retries it.
 */
export function isValidationError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  return thrownIssues(error) !== undefined || (error as { name?: unknown }).name === 'ValidationError';
}

/** The issues a thrown error carries, when they have the Standard Schema shape: one per field. */
export function thrownIssues(error: unknown): ValidationIssue[] | undefined {
  const issues = (error as { issues?: unknown } | null)?.issues;
  if (!Array.isArray(issues) || issues.length === 0) return undefined;
  return issues.every(isIssue) ? toIssues(issues) : undefined;
}

function isIssue(value: unknown): value is StandardSchemaV1.Issue {
  if (typeof (value as { message?: unknown } | null)?.message !== 'string') return false;
  const path = (value as { path?: unknown }).path;
  return (
    path === undefined ||
    (Array.isArray(path) &&
      path.every(
        (segment) =>
          typeof segment === 'string' ||
          typeof segment === 'number' ||
          typeof segment === 'symbol' ||
          (typeof segment === 'object' && segment !== null && 'key' in segment),
      ))
  );
}

/** Formats issues as one line per field: `city: Required`. */
export function formatIssues(issues: ValidationIssue[]): string {
  return issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
}
