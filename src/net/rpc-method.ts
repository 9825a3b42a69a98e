// An RPC method, defined once beside the module that serves it: its name, the schemas of
// its params and result, and how big a body may come with a call. The definition types
// both sides (rpc.register's handler and rpc.call's params and result) and holds the
// compiled checks that the server runs on params and the caller on replies.
import type { TSchema } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";

/** One RPC method; create with `defineMethod`. */
export interface RpcMethod<P extends TSchema = TSchema, R extends TSchema = TSchema> {
  readonly name: string;
  /** The params' schema (TypeBox): every array and string in it has a maximum length. */
  readonly params: P;
  /** The result's schema: a reply of another shape is refused by the caller. */
  readonly result: R;
  /** A body of at most this many bytes may come with a call; 0: a call carrying a body is refused. */
  readonly maxBodyBytes: number;
  readonly checkParams: TypeCheck<P>;
  readonly checkResult: TypeCheck<R>;
}

/** What `defineMethod` takes besides the name. */
export interface MethodSpec<P extends TSchema, R extends TSchema> {
  params: P;
  result: R;
  maxBodyBytes?: number;
}

/** Define an RPC method (once, at module load: the checks are compiled here). */
export function defineMethod<P extends TSchema, R extends TSchema>(name: string, spec: MethodSpec<P, R>): RpcMethod<P, R> {
  return {
    name,
    params: spec.params,
    result: spec.result,
    maxBodyBytes: spec.maxBodyBytes ?? 0,
    checkParams: TypeCompiler.Compile(spec.params),
    checkResult: TypeCompiler.Compile(spec.result),
  };
}

/** Why `value` breaks `check`, as "<what>/<path>: <message>" (a path, never the value), or undefined if it passes. */
export function firstBreach(check: TypeCheck<TSchema>, value: unknown, what: string): string | undefined {
  if (check.Check(value)) return undefined;
  const first = check.Errors(value).First();
  const where = first?.path || "/";
  return `${what}${where === "/" ? "" : where}: ${first?.message ?? "invalid"}`;
}
