// The etcd wire contract: Concord's generated descriptors (src/api/etcd/gen, from
// src/api/etcd/proto) against the protos the etcd3 client ships, loaded with
// @grpc/proto-loader. Every message, field (number, name, type, type name, label, oneof),
// nested enum value and service method (types, streaming) must match. A deliberately altered
// copy of etcd's protos (one field number changed) shows that the comparison catches it.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { clone, fromBinary, isFieldSet } from "@bufbuild/protobuf";
import {
  FieldDescriptorProtoSchema,
  FileDescriptorProtoSchema,
  type DescriptorProto,
  type FieldDescriptorProto,
  type EnumDescriptorProto,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { loadSync, type MessageTypeDefinition } from "@grpc/proto-loader";
import { file_auth } from "../../../src/api/etcd/gen/auth_pb.js";
import { file_kv } from "../../../src/api/etcd/gen/kv_pb.js";
import { file_rpc } from "../../../src/api/etcd/gen/rpc_pb.js";

const ETCD3_PROTO_DIR = "node_modules/etcd3/proto";

/** etcd3's protos as FileDescriptorProtos, the way its client loads them. */
function loadEtcdFiles(rpcProtoPath: string): FileDescriptorProto[] {
  const definition = loadSync(rpcProtoPath, { keepCase: true });
  const range = definition["etcdserverpb.RangeRequest"];
  assert.ok(range !== undefined && "format" in range, "etcd3's protos define the message RangeRequest");
  const files = (range as MessageTypeDefinition<object, object>).fileDescriptorProtos;
  return files.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
}

interface Flattened {
  readonly messages: Map<string, DescriptorProto>;
  readonly enums: Map<string, EnumDescriptorProto>;
  readonly files: FileDescriptorProto[];
}

function flatten(files: readonly FileDescriptorProto[]): Flattened {
  const messages = new Map<string, DescriptorProto>();
  const enums = new Map<string, EnumDescriptorProto>();
  const visit = (prefix: string, message: DescriptorProto): void => {
    const name = `${prefix}.${message.name}`;
    messages.set(name, message);
    for (const e of message.enumType) enums.set(`${name}.${e.name}`, e);
    for (const nested of message.nestedType) visit(name, nested);
  };
  for (const file of files) {
    for (const message of file.messageType) visit(file.package, message);
    for (const e of file.enumType) enums.set(`${file.package}.${e.name}`, e);
  }
  return { messages, enums, files: [...files] };
}

/**
 * The full name a type reference denotes, by protobuf's scoping rules: protobufjs writes
 * references relative to the referring scope ("SortOrder"), protoc fully qualified
 * (".etcdserverpb.RangeRequest.SortOrder").
 */
function resolveType(name: string, scope: string, types: Flattened): string {
  if (name === "") return "";
  if (name.startsWith(".")) return name.slice(1);
  const parts = scope.split(".");
  for (let n = parts.length; n >= 0; n--) {
    const candidate = [...parts.slice(0, n), name].join(".");
    if (types.messages.has(candidate) || types.enums.has(candidate)) return candidate;
  }
  return `unresolved ${name}`;
}

function fieldShape(
  messageName: string,
  message: DescriptorProto,
  field: FieldDescriptorProto,
  types: Flattened,
): string {
  const oneof = isFieldSet(field, FieldDescriptorProtoSchema.field.oneofIndex)
    ? (message.oneofDecl[field.oneofIndex]?.name ?? "?")
    : "";
  const type = resolveType(field.typeName, messageName, types);
  const map = types.messages.get(type)?.options?.mapEntry === true ? " map" : "";
  return `${field.name} #${field.number} type=${field.type} label=${field.label} typeName=${type} oneof=${oneof}${map}`;
}

/** Every way `ours` differs from `etcd`, one line each; empty when the contract holds. */
function contractDifferences(etcd: Flattened, ours: Flattened): string[] {
  const differences: string[] = [];
  for (const [name, theirs] of etcd.messages) {
    const mine = ours.messages.get(name);
    if (mine === undefined) {
      differences.push(`message ${name} missing`);
      continue;
    }
    const byNumber = (m: DescriptorProto, types: Flattened) =>
      new Map(m.field.map((f): [number, string] => [f.number, fieldShape(name, m, f, types)]));
    const theirFields = byNumber(theirs, etcd);
    const myFields = byNumber(mine, ours);
    for (const [number, shape] of theirFields) {
      const myShape = myFields.get(number);
      if (myShape !== shape)
        differences.push(`${name} field ${number}: etcd ${shape}, ours ${myShape ?? "missing"}`);
    }
    for (const [number, shape] of myFields) {
      if (!theirFields.has(number)) differences.push(`${name} field ${number} is not etcd's: ${shape}`);
    }
  }
  for (const name of ours.messages.keys()) {
    if (!etcd.messages.has(name)) differences.push(`message ${name} is not etcd's`);
  }
  for (const [name, theirs] of etcd.enums) {
    const mine = ours.enums.get(name);
    const values = (e: EnumDescriptorProto | undefined) =>
      JSON.stringify((e?.value ?? []).map((v) => [v.name, v.number]));
    if (values(mine) !== values(theirs))
      differences.push(`enum ${name}: etcd ${values(theirs)}, ours ${values(mine)}`);
  }
  const methods = (types: Flattened) => {
    const out = new Map<string, string>();
    for (const file of types.files) {
      for (const service of file.service) {
        for (const method of service.method) {
          out.set(
            `${file.package}.${service.name}/${method.name}`,
            `${resolveType(method.inputType, file.package, types)} -> ${resolveType(method.outputType, file.package, types)} clientStreaming=${method.clientStreaming === true} serverStreaming=${method.serverStreaming === true}`,
          );
        }
      }
    }
    return out;
  };
  const theirMethods = methods(etcd);
  const myMethods = methods(ours);
  for (const [name, shape] of theirMethods) {
    if (myMethods.get(name) !== shape)
      differences.push(`method ${name}: etcd ${shape}, ours ${myMethods.get(name) ?? "missing"}`);
  }
  for (const name of myMethods.keys()) {
    if (!theirMethods.has(name)) differences.push(`method ${name} is not etcd's`);
  }
  return differences;
}

const ours = flatten([file_rpc.proto, file_kv.proto, file_auth.proto]);

test("the generated descriptors match etcd3's protos field by field", () => {
  const etcd = flatten(loadEtcdFiles(join(ETCD3_PROTO_DIR, "rpc.proto")));
  assert.ok(etcd.messages.size > 90, `etcd3's protos hold ${etcd.messages.size} messages`);
  assert.ok(etcd.messages.has("mvccpb.KeyValue") && etcd.messages.has("authpb.Permission"));
  assert.deepEqual(contractDifferences(etcd, ours), []);
});

test("one changed field number in etcd's protos is reported", () => {
  const dir = mkdtempSync(join(tmpdir(), "concord-proto-contract-"));
  try {
    for (const file of ["rpc.proto", "kv.proto", "auth.proto"]) {
      let text = readFileSync(join(ETCD3_PROTO_DIR, file), "utf8");
      if (file === "rpc.proto") {
        const altered = text.replace("int64 limit = 3;", "int64 limit = 30;");
        assert.notEqual(altered, text, "the field to alter is present");
        text = altered;
      }
      writeFileSync(join(dir, file), text);
    }
    const differences = contractDifferences(flatten(loadEtcdFiles(join(dir, "rpc.proto"))), ours);
    assert.deepEqual(differences, [
      "etcdserverpb.RangeRequest field 30: etcd limit #30 type=3 label=1 typeName= oneof=, ours missing",
      "etcdserverpb.RangeRequest field 3 is not etcd's: limit #3 type=3 label=1 typeName= oneof=",
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("one changed field number in ours is reported", () => {
  const etcd = flatten(loadEtcdFiles(join(ETCD3_PROTO_DIR, "rpc.proto")));
  const altered = flatten(
    [file_rpc.proto, file_kv.proto, file_auth.proto].map((f) => clone(FileDescriptorProtoSchema, f)),
  );
  const keyValue = altered.messages.get("mvccpb.KeyValue");
  const lease = keyValue?.field.find((f) => f.name === "lease");
  assert.ok(lease !== undefined);
  lease.number = 7;
  const differences = contractDifferences(etcd, altered);
  assert.ok(
    differences.some((d) => d.startsWith("mvccpb.KeyValue field 6: etcd lease #6")),
    differences.join("\n"),
  );
});
