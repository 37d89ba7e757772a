// Type declarations of the attnd client (index.js).

export type Datatype =
  | 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64'
  | 'INT8' | 'INT16' | 'INT32' | 'INT64' | 'FP16' | 'BF16' | 'FP32' | 'FP64';

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Uint8Array | Uint8ClampedArray | Uint16Array | Uint32Array | BigUint64Array;

/** Nested arrays of numbers or booleans, any depth. */
export type NestedArray = ReadonlyArray<number | boolean | bigint | NestedArray>;

/** What a tensor input may be given as. */
export type TensorLike =
  | Tensor
  | TypedArray
  | NestedArray
  | { data: TypedArray | NestedArray; shape?: readonly number[]; datatype?: Datatype };

export interface ErrorOptions {
  status?: number | null;
  body?: Uint8Array | null;
  headers?: Record<string, string>;
  cause?: unknown;
}

/** Base class of every error the client throws. */
export class AttndError extends Error {
  constructor(message: string, options?: ErrorOptions);
  /** HTTP status, or null when no answer arrived. */
  status: number | null;
  /** Raw response body. */
  body: Uint8Array | null;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
}
export class ConnectError extends AttndError {}
export class RequestTimeoutError extends AttndError {}
export class ProtocolError extends AttndError {}
/** An error status; `message` is the server's {"error": ...} text. */
export class HTTPError extends AttndError {
  status: number;
}
export class BadRequestError extends HTTPError {}
export class UnauthorizedError extends HTTPError {}
export class ForbiddenError extends HTTPError {}
export class ModelNotFoundError extends HTTPError {}
/** 404 on a sequence request: unknown here or ended; the message says which and why. */
export class SequenceNotFoundError extends ModelNotFoundError {}
/** 409: a sequence start (or restore) on a live id. */
export class ConflictError extends HTTPError {}
export class PayloadTooLargeError extends HTTPError {}
export class ServerError extends HTTPError {}
export class ServiceUnavailableError extends ServerError {
  /** The server's Retry-After in seconds, or null. */
  readonly retryAfter: number | null;
}
export class GatewayTimeoutError extends ServerError {}

export interface TensorOptions {
  shape?: readonly number[];
  datatype?: Datatype;
  name?: string;
}

/** A row-major tensor; FP32 data is a Float32Array, BOOL a Uint8Array, INT64 a BigInt64Array;
 * FP16 and BF16 data a Float32Array of the 16-bit values. */
export class Tensor<T extends TypedArray = TypedArray> {
  constructor(data: TypedArray | NestedArray, options?: TensorOptions);
  name: string | undefined;
  shape: number[];
  datatype: Datatype;
  data: T;
  /** The data as nested arrays of the tensor's shape (BOOL as booleans). */
  toNested(): unknown;
  /** Little-endian bytes of the data. */
  bytes(): Uint8Array;
}

export interface ClientOptions {
  /** Sent as `Authorization: Bearer <key>`. */
  apiKey?: string | null;
  /** Sent instead of apiKey on the repository endpoints; default apiKey. */
  adminKey?: string | null;
  /** Milliseconds per request; 0 or null: no timeout. Default 60000. */
  timeout?: number | null;
  /** Retries on 503/429 and connection failures. Default 3. */
  retries?: number;
  /** First backoff in ms (doubled per attempt, with jitter). Default 50. */
  backoff?: number;
  /** Longest wait (ms) before giving up on a retry. Default 10000. */
  maxBackoff?: number;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** A fetch implementation; default globalThis.fetch. */
  fetch?: typeof fetch;
  /** Compress request bodies (default of infer's option). */
  requestCompressionAlgorithm?: Compression | null;
  /** Ask for compressed replies (default of infer's option). */
  responseCompressionAlgorithm?: Compression | null;
  /** Triton's spelling of requestCompressionAlgorithm. */
  request_compression_algorithm?: Compression | null;
  /** Triton's spelling of responseCompressionAlgorithm. */
  response_compression_algorithm?: Compression | null;
}

export type Compression = 'gzip' | 'deflate';

export interface CallOptions {
  timeout?: number | null;
  signal?: AbortSignal;
}

export interface RequestOptions extends CallOptions {
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  admin?: boolean;
  retry?: boolean;
  /** false: a failed connection is not retried (a request that must not run twice); 503/429 still are. */
  retryConnect?: boolean;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  bytes: Uint8Array;
}

export type Parameters = Record<string, unknown>;

export interface InferOptions extends CallOptions {
  parameters?: Parameters;
  /** Binary tensor data extension both ways (default true). */
  binary?: boolean;
  /** Names of the outputs wanted (default all). */
  outputs?: Iterable<string>;
  /** Request id, echoed by the server. */
  id?: string;
  /** Send the floating-point inputs as FP16 or BF16 (rounded to nearest even). */
  inputDatatype?: 'FP32' | 'FP16' | 'BF16';
  /** The outputs' format on the wire; their data stays a Float32Array of the values. */
  outputDatatype?: 'FP32' | 'FP16' | 'BF16';
  /** Compress the request body. */
  requestCompressionAlgorithm?: Compression | null;
  /** Ask for a compressed reply (Accept-Encoding). */
  responseCompressionAlgorithm?: Compression | null;
  /** Extra HTTP headers for this request. */
  headers?: Record<string, string>;
  /** false: a failed connection is not retried. */
  retryConnect?: boolean;
}

/** A sequence id: an integer in 1 .. 2^64-1 (BigInt, or a safe-integer number) or a string matching [A-Za-z0-9._:~-]{1,128}. */
export type SequenceId = bigint | number | string;

export interface SequenceOptions {
  /** Default: a random 63-bit BigInt. */
  id?: SequenceId;
  /** 'self' (default): every step carries the new tokens of every input; 'cross': the first step carries the memory (keys, values). */
  kind?: 'self' | 'cross';
  /** Parameters of the start request only (a built-in model's config, e.g. {query_dimensions: 64}). */
  config?: Parameters;
}

export interface StepOptions extends Omit<InferOptions, 'parameters'> {
  /** End the sequence after this step. */
  end?: boolean;
  /** Extra request parameters (the sequence's are added). */
  parameters?: Parameters;
}

export interface SequenceEntry {
  id: string | number;
  model: string;
  length: number;
  bytes: number;
  idle_s: number;
  age_s: number;
  busy: boolean;
}

/** One sequence (streaming session) of a model on the server. */
export class Sequence {
  constructor(client: Client, model: string, options?: SequenceOptions);
  readonly client: Client;
  readonly model: string;
  /** A BigInt for integer ids (numbers are turned into BigInts), else the string. */
  readonly id: bigint | string;
  readonly kind: 'self' | 'cross';
  readonly config: Parameters;
  /** Tokens the server holds after the last step. */
  length: number;
  started: boolean;
  ended: boolean;
  /** {'Sequence-Id': id}. */
  readonly headers: Record<string, string>;
  /** The next tokens; the first call starts the sequence. Resolves infer's result for those rows
   *  (parameters: {sequence_id, sequence_length, sequence_end?}). */
  step(inputs: Record<string, TensorLike> | Tensor[], options?: StepOptions): Promise<InferResult>;
  /** Ends it now (DELETE) without a step; a no-op when not started or already ended. */
  end(options?: CallOptions): Promise<void>;
  /** The state as safetensors bytes, for Client.restoreSequence; the sequence stays live. */
  export(options?: CallOptions): Promise<Uint8Array>;
}

/** The header that names a sequence. */
export const SEQUENCE_HEADER: 'Sequence-Id';
/** A random id in 1 .. 2^63-1. */
export function newSequenceId(): bigint;

export interface InferResult {
  outputs: Record<string, Tensor>;
  modelName: string;
  modelVersion?: string;
  id?: string;
  parameters: Parameters;
}

export interface AttentionOptions extends CallOptions {
  attnMask?: TensorLike | null;
  queryLengths?: TensorLike | null;
  keyLengths?: TensorLike | null;
  binary?: boolean;
  /** The mechanism's config; its keys may also be given directly in these options. */
  config?: Parameters;
  [configKey: string]: unknown;
}

export interface Health {
  live: boolean;
  ready: boolean;
}

export interface MetadataTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: MetadataTensor[];
  outputs: MetadataTensor[];
  [key: string]: unknown;
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
  [key: string]: unknown;
}

export interface IndexEntry {
  name: string;
  version?: string;
  state: string;
  reason?: string;
}

export interface ModelConfig {
  type: string;
  config?: Parameters;
}

export class Client {
  constructor(url?: string, options?: ClientOptions | string);
  readonly url: string;
  apiKey: string | null;
  adminKey: string | null;
  timeout: number | null;
  retries: number;
  backoff: number;
  maxBackoff: number;
  headers: Record<string, string>;

  request(method: string, path: string, options?: RequestOptions): Promise<RawResponse>;
  health(options?: CallOptions): Promise<Health>;
  isReady(model?: string, options?: CallOptions): Promise<boolean>;
  serverMetadata(options?: CallOptions): Promise<ServerMetadata>;
  metadata(name: string, options?: CallOptions): Promise<ModelMetadata>;
  models(options?: CallOptions & { ready?: boolean }): Promise<IndexEntry[]>;
  infer(name: string, inputs: Record<string, TensorLike> | Tensor[], options?: InferOptions): Promise<InferResult>;
  attention(
    type: string,
    queries: TensorLike,
    keys: TensorLike,
    values: TensorLike,
    options?: AttentionOptions,
  ): Promise<Tensor<Float32Array>>;
  loadModel(
    name: string,
    config?: ModelConfig | string | null,
    weights?: Uint8Array | ArrayBuffer | string | null,
    options?: CallOptions & { binary?: boolean },
  ): Promise<void>;
  unloadModel(name: string, options?: CallOptions): Promise<void>;

  /** A Sequence of `model`; nothing is sent until its first step. */
  sequence(model: string, options?: SequenceOptions): Sequence;
  /** GET /v2/models/{m}/sequences/{id}: safetensors bytes. */
  exportSequence(model: string, id: SequenceId, options?: CallOptions): Promise<Uint8Array>;
  /** PUT /v2/models/{m}/sequences/{id}: the restored, live Sequence. */
  restoreSequence(model: string, id: SequenceId, data: Uint8Array | ArrayBuffer, options?: CallOptions): Promise<Sequence>;
  /** DELETE /v2/models/{m}/sequences/{id}. */
  deleteSequence(model: string, id: SequenceId, options?: CallOptions): Promise<{ model: string; sequence_id: string | number; ended: string }>;
  /** GET /v2/models/{m}/sequences (admin key when the server has admin keys). */
  listSequences(model: string, options?: CallOptions): Promise<SequenceEntry[]>;
}

/** Weights larger than this (bytes) are sent raw after the load request's JSON header. */
export const BINARY_LOAD_THRESHOLD: number;

/** JSON.parse that also reads the NaN / Infinity / -Infinity tokens attnd writes. */
export function parseJSON(text: string): any;
/** Rounds numbers to FP16 or BF16 (nearest even): a Float32Array of the values. */
export function roundHalf(datatype: 'FP16' | 'BF16', values: ArrayLike<number>): Float32Array;
/** Bytes compressed as Content-Encoding gzip or deflate (zlib format). */
export function compressBytes(algo: Compression, bytes: Uint8Array): Promise<Uint8Array>;

export default Client;
