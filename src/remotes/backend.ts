// A remote store behind a bucket (issue 15): one interface for every kind of remote, so the
// pull-through fill, write-through queue and sync are written once. An adapter per type
// (http-, s3-, azure-, gcs- and swift-backend.ts; factory.ts picks one for a spec) says what
// it can do in `capabilities`; a read-only origin has no put, delete or list. Every adapter
// passes test/harness/remote-conformance.ts.
import { MeshError } from "../errors.ts";

/** The kinds of remote a bucket can front. */
export const REMOTE_TYPES = ["http", "s3", "azure", "gcs", "swift"] as const;
export type RemoteType = (typeof REMOTE_TYPES)[number];

/** What a remote says of one object. */
export interface RemoteObjectInfo {
  key: string;
  size: number;
  etag?: string;
  /** Epoch ms. */
  lastModified?: number;
  contentType?: string;
  /** User metadata, names lowercased without their prefix. */
  meta: Record<string, string>;
  /** Freshness headers as the remote sent them (the cache tier reads them). */
  cacheControl?: string;
  expires?: string;
}

/** A byte range, both ends included (as HTTP's Range). */
export interface ByteSpan {
  start: number;
  end: number;
}

/** A conditional or ranged read. */
export interface GetOptions {
  range?: ByteSpan;
  /** Only if the remote's ETag is this one (a ranged fill must not mix versions). */
  ifMatch?: string;
  /** Revalidation: "not-modified" when the remote's ETag is still this one. */
  ifNoneMatch?: string;
  signal?: AbortSignal;
}

/** A read's answer: the object's info and its bytes (the whole object, or `range` of it). */
export interface RemoteBody {
  info: RemoteObjectInfo;
  range?: ByteSpan;
  body: ReadableStream<Uint8Array>;
}

/** One page of a listing. */
export interface RemotePage {
  objects: RemoteObjectInfo[];
  /** Pass back to list the next page; null at the end. */
  next: string | null;
}

/** What an adapter can do besides reading. */
export interface RemoteCapabilities {
  write: boolean;
  list: boolean;
}

/** One remote store. Every method throws OriginError (502) when the remote fails or times out. */
export interface RemoteBackend {
  readonly type: RemoteType;
  readonly capabilities: RemoteCapabilities;
  /** The object's info, or null when the remote has no such object. */
  head(key: string, opts?: { signal?: AbortSignal }): Promise<RemoteObjectInfo | null>;
  /** The object's bytes; null when it has no such object; "not-modified" for a matching ifNoneMatch; "changed" for a failed ifMatch. */
  get(key: string, opts?: GetOptions): Promise<RemoteBody | null | "not-modified" | "changed">;
  put?(key: string, body: ReadableStream<Uint8Array> | Uint8Array, info: Omit<RemoteObjectInfo, "key" | "size" | "etag" | "lastModified">, opts?: { signal?: AbortSignal }): Promise<{ etag?: string }>;
  delete?(key: string, opts?: { signal?: AbortSignal }): Promise<void>;
  list?(prefix: string, cursor: string | null, opts?: { limit?: number; signal?: AbortSignal }): Promise<RemotePage>;
}

/** The remote failed, timed out, or answered something unusable (never its secrets or full URL). */
export class OriginError extends MeshError {
  constructor(message: string) {
    super("OriginError", message);
  }
}
