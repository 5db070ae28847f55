// Promise and async-iterator faces over the generated grpc-js clients, so
// callers write `await agent.models.listModels({})` and
// `for await (const piece of agent.models.chat({...}))`. Every call gets
// the connection's metadata (bearer token, a confirmation id when retrying)
// and every failure becomes an OmniPanelError.
//
// Requests are `Partial<Request>`: top-level fields left out get their
// proto3 defaults here (decoding an empty message gives them), because
// ts-proto's encoders expect every field present. Nested messages must be
// whole (build them with the generated `X.create({...})`).

import type { CallOptions, Client, ClientReadableStream, ClientUnaryCall, Metadata, ServiceDefinition, ServiceError } from "@grpc/grpc-js";
import { classify } from "./errors";

/** Per-call options. */
export interface CallOpts {
  /** Retry a destructive act the user allowed (metadata omnipanel-confirmation). */
  confirmation?: string;
  /** Give up after this many milliseconds. */
  timeoutMs?: number;
  /** Cancel the call. */
  signal?: AbortSignal;
}

type UnaryOf<F> = F extends (
  request: infer Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: (error: ServiceError | null, response: infer Res) => void,
) => ClientUnaryCall
  ? (request?: Partial<Req>, opts?: CallOpts) => Promise<Res>
  : never;

type StreamOf<F> = F extends (request: infer Req, metadata?: Metadata, options?: Partial<CallOptions>) => ClientReadableStream<infer Res>
  ? (request?: Partial<Req>, opts?: CallOpts) => CallStream<Res>
  : never;

/** The methods of a generated client `C`, as promises and streams. */
export type Service<C> = {
  // Streams first: a ClientReadableStream is also a ClientUnaryCall.
  [K in Exclude<keyof C, keyof Client>]: C[K] extends (...args: never[]) => ClientReadableStream<unknown>
    ? StreamOf<C[K]>
    : UnaryOf<C[K]>;
};

/** A server stream: iterate it with `for await`; `cancel()` ends it. */
export interface CallStream<T> extends AsyncIterable<T> {
  cancel(): void;
}

export interface CallContext {
  /** Metadata for one call (token, confirmation). */
  metadata(opts: CallOpts): Metadata;
  /** How the target is named in error messages. */
  label: string;
}

type AnyClient = Client & Record<string, (...args: unknown[]) => unknown>;

/** Wrap a generated client built from `definition`. */
export function wrapService<C>(client: C, definition: ServiceDefinition, context: CallContext): Service<C> {
  const raw = client as unknown as AnyClient;
  const service: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    const defaults = () => method.requestDeserialize(Buffer.alloc(0)) as object;
    const callOptions = (opts: CallOpts): Partial<CallOptions> =>
      opts.timeoutMs === undefined ? {} : { deadline: Date.now() + opts.timeoutMs };
    if (method.responseStream) {
      service[name] = (request: object = {}, opts: CallOpts = {}) => {
        const call = raw[name]!.call(raw, { ...defaults(), ...request }, context.metadata(opts), callOptions(opts)) as ClientReadableStream<unknown>;
        return streamOf(call, context.label, opts.signal);
      };
    } else {
      service[name] = (request: object = {}, opts: CallOpts = {}) =>
        new Promise((resolve, reject) => {
          const call = raw[name]!.call(
            raw,
            { ...defaults(), ...request },
            context.metadata(opts),
            callOptions(opts),
            (err: ServiceError | null, response: unknown) => (err ? reject(classify(err, context.label)) : resolve(response)),
          ) as ClientUnaryCall;
          opts.signal?.addEventListener("abort", () => call.cancel(), { once: true });
        });
    }
  }
  return service as Service<C>;
}

function streamOf<T>(call: ClientReadableStream<T>, label: string, signal?: AbortSignal): CallStream<T> {
  signal?.addEventListener("abort", () => call.cancel(), { once: true });
  // An error before anyone iterates must not become an unhandled 'error'.
  call.on("error", () => {});
  return {
    cancel: () => call.cancel(),
    async *[Symbol.asyncIterator]() {
      try {
        for await (const item of call) yield item as T;
      } catch (err) {
        throw classify(err, label);
      } finally {
        call.cancel();
      }
    },
  };
}
