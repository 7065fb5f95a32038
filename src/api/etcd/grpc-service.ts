/**
 * A grpc-js service definition built from a generated protobuf-es service descriptor: the
 * method paths (`/etcdserverpb.KV/Range`), streaming flags, and (de)serializers that use the
 * generated schemas (kv-encoding.ts writes the KV responses). Unknown fields in requests are
 * dropped, as etcd's Go server ignores them; bytes that are not a valid message make the
 * deserializer throw, which grpc-js answers with an INTERNAL status without calling the
 * handler.
 */
import {
  fromBinary,
  toBinary,
  type DescMessage,
  type DescService,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { handEncoder } from "./kv-encoding.js";

/** A message's wire bytes: by the hand-written encoder where kv-encoding.ts has one, else by toBinary. */
function serializer<D extends DescMessage>(schema: D): (message: MessageShape<D>) => Buffer {
  const encode = handEncoder(schema);
  return (message) => {
    const bytes = encode?.(message) ?? toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<D extends DescMessage>(schema: D): (bytes: Buffer) => MessageShape<D> {
  return (bytes) => fromBinary(schema, bytes, { readUnknownFields: false });
}

export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.name] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input) as (message: unknown) => Buffer,
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output) as (message: unknown) => Buffer,
      responseDeserialize: deserializer(method.output),
    };
  }
  return definition;
}
