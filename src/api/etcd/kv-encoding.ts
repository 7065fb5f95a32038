/**
 * The wire bytes of the KV service's responses (RangeResponse, PutResponse,
 * DeleteRangeResponse, TxnResponse) written by hand from their protobuf-es messages: the
 * grpc-js serializers of those methods use it (grpc-service.ts). protobuf-es's reflective
 * `toBinary` took about 15 µs of CPU for a one-key RangeResponse on the development VM, a
 * tenth of what a whole linearizable get costs the server; this writes the same bytes after
 * one pass that sizes every nested message, into one buffer of the exact length.
 *
 * The output is byte for byte what `toBinary` writes (proto-writer.ts says how);
 * test/api/etcd/kv-encoding.test.ts checks it against toBinary on random messages. A message
 * that carries unknown fields anywhere is not encoded here (`undefined`): toBinary writes
 * those, and Concord never builds such responses.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import type { KeyValue } from "./gen/kv_pb.js";
import {
  DeleteRangeResponseSchema,
  PutResponseSchema,
  RangeResponseSchema,
  TxnResponseSchema,
  type DeleteRangeResponse,
  type PutResponse,
  type RangeResponse,
  type ResponseOp,
  type TxnResponse,
} from "./gen/rpc_pb.js";
import {
  ProtoWriter,
  boolFieldSize,
  headerFieldSize,
  int64FieldSize,
  keyValueSize,
  lengthDelimitedSize,
  writeHeaderField,
  writeKeyValue,
} from "./proto-writer.js";

interface MaybeUnknown {
  readonly $unknown?: readonly unknown[];
}

function hasUnknown(message: MaybeUnknown | undefined): boolean {
  return message?.$unknown !== undefined && message.$unknown.length > 0;
}

function keyValueFieldSize(kv: KeyValue): number {
  return lengthDelimitedSize(keyValueSize(kv));
}

function writeKeyValueField(writer: ProtoWriter, field: number, kv: KeyValue): void {
  writeKeyValue(writer.lengthPrefix(field, keyValueSize(kv)), kv);
}

function keyValuesSize(kvs: readonly KeyValue[]): number {
  let size = 0;
  for (const kv of kvs) size += keyValueFieldSize(kv);
  return size;
}

function keyValuesUnknown(kvs: readonly KeyValue[]): boolean {
  for (const kv of kvs) if (hasUnknown(kv)) return true;
  return false;
}

/** RangeResponse: header 1, kvs 2, more 3, count 4. */
function rangeSize(response: RangeResponse): number {
  return (
    headerFieldSize(response.header) +
    keyValuesSize(response.kvs) +
    boolFieldSize(response.more) +
    int64FieldSize(response.count)
  );
}

function writeRange(writer: ProtoWriter, response: RangeResponse): void {
  writeHeaderField(writer, response.header);
  for (const kv of response.kvs) writeKeyValueField(writer, 2, kv);
  writer.boolField(3, response.more).int64Field(4, response.count);
}

/** PutResponse: header 1, prev_kv 2. */
function putSize(response: PutResponse): number {
  const prevKv = response.prevKv;
  return headerFieldSize(response.header) + (prevKv === undefined ? 0 : keyValueFieldSize(prevKv));
}

function writePut(writer: ProtoWriter, response: PutResponse): void {
  writeHeaderField(writer, response.header);
  if (response.prevKv !== undefined) writeKeyValueField(writer, 2, response.prevKv);
}

/** DeleteRangeResponse: header 1, deleted 2, prev_kvs 3. */
function deleteRangeSize(response: DeleteRangeResponse): number {
  return (
    headerFieldSize(response.header) + int64FieldSize(response.deleted) + keyValuesSize(response.prevKvs)
  );
}

function writeDeleteRange(writer: ProtoWriter, response: DeleteRangeResponse): void {
  writeHeaderField(writer, response.header);
  writer.int64Field(2, response.deleted);
  for (const kv of response.prevKvs) writeKeyValueField(writer, 3, kv);
}

/** ResponseOp: one of response_range 1, response_put 2, response_delete_range 3, response_txn 4. */
function opSize(op: ResponseOp): number {
  const response = op.response;
  switch (response.case) {
    case "responseRange":
      return lengthDelimitedSize(rangeSize(response.value));
    case "responsePut":
      return lengthDelimitedSize(putSize(response.value));
    case "responseDeleteRange":
      return lengthDelimitedSize(deleteRangeSize(response.value));
    case "responseTxn":
      return lengthDelimitedSize(txnSize(response.value));
    case undefined:
      return 0;
  }
}

function writeOp(writer: ProtoWriter, op: ResponseOp): void {
  const response = op.response;
  switch (response.case) {
    case "responseRange":
      writeRange(writer.lengthPrefix(1, rangeSize(response.value)), response.value);
      return;
    case "responsePut":
      writePut(writer.lengthPrefix(2, putSize(response.value)), response.value);
      return;
    case "responseDeleteRange":
      writeDeleteRange(writer.lengthPrefix(3, deleteRangeSize(response.value)), response.value);
      return;
    case "responseTxn":
      writeTxn(writer.lengthPrefix(4, txnSize(response.value)), response.value);
      return;
    case undefined:
      return;
  }
}

/** TxnResponse: header 1, succeeded 2, responses 3. */
function txnSize(response: TxnResponse): number {
  let size = headerFieldSize(response.header) + boolFieldSize(response.succeeded);
  for (const op of response.responses) size += lengthDelimitedSize(opSize(op));
  return size;
}

function writeTxn(writer: ProtoWriter, response: TxnResponse): void {
  writeHeaderField(writer, response.header);
  writer.boolField(2, response.succeeded);
  for (const op of response.responses) writeOp(writer.lengthPrefix(3, opSize(op)), op);
}

function rangeUnknown(response: RangeResponse): boolean {
  return hasUnknown(response) || hasUnknown(response.header) || keyValuesUnknown(response.kvs);
}

function putUnknown(response: PutResponse): boolean {
  return hasUnknown(response) || hasUnknown(response.header) || hasUnknown(response.prevKv);
}

function deleteRangeUnknown(response: DeleteRangeResponse): boolean {
  return hasUnknown(response) || hasUnknown(response.header) || keyValuesUnknown(response.prevKvs);
}

function txnUnknown(response: TxnResponse): boolean {
  if (hasUnknown(response) || hasUnknown(response.header)) return true;
  for (const op of response.responses) {
    if (hasUnknown(op)) return true;
    const inner = op.response;
    switch (inner.case) {
      case "responseRange":
        if (rangeUnknown(inner.value)) return true;
        break;
      case "responsePut":
        if (putUnknown(inner.value)) return true;
        break;
      case "responseDeleteRange":
        if (deleteRangeUnknown(inner.value)) return true;
        break;
      case "responseTxn":
        if (txnUnknown(inner.value)) return true;
        break;
      case undefined:
        break;
    }
  }
  return false;
}

function encoder<M>(
  unknown: (message: M) => boolean,
  size: (message: M) => number,
  write: (writer: ProtoWriter, message: M) => void,
): (message: M) => Uint8Array | undefined {
  return (message) => {
    if (unknown(message)) return undefined;
    const writer = new ProtoWriter(size(message));
    write(writer, message);
    return writer.view();
  };
}

export const encodeRangeResponse = encoder(rangeUnknown, rangeSize, writeRange);
export const encodePutResponse = encoder(putUnknown, putSize, writePut);
export const encodeDeleteRangeResponse = encoder(deleteRangeUnknown, deleteRangeSize, writeDeleteRange);
export const encodeTxnResponse = encoder(txnUnknown, txnSize, writeTxn);

const ENCODERS = new Map<string, (message: never) => Uint8Array | undefined>([
  [RangeResponseSchema.typeName, encodeRangeResponse],
  [PutResponseSchema.typeName, encodePutResponse],
  [DeleteRangeResponseSchema.typeName, encodeDeleteRangeResponse],
  [TxnResponseSchema.typeName, encodeTxnResponse],
]);

/**
 * The hand-written encoder of messages of `schema`, if this file has one; it returns
 * undefined for a message it leaves to toBinary.
 */
export function handEncoder(schema: DescMessage): ((message: unknown) => Uint8Array | undefined) | undefined {
  return ENCODERS.get(schema.typeName) as ((message: unknown) => Uint8Array | undefined) | undefined;
}
