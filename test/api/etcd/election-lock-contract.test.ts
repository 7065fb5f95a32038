// The wire contract of etcd's v3electionpb.Election and v3lockpb.Lock services: the etcd3 npm
// client ships no protos for them, so the reference here is a fixture written from etcd 3.4's
// v3election.proto and v3lock.proto — every message with its fields (number, name, type, type
// name, label) and every method (input, output, streaming). Concord's generated descriptors
// must match it exactly, and an altered descriptor shows that the comparison catches a change.
import assert from "node:assert/strict";
import { test } from "node:test";
import { clone, isFieldSet } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldDescriptorProtoSchema,
  FileDescriptorProtoSchema,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { file_v3election } from "../../../src/api/etcd/gen/v3election_pb.js";
import { file_v3lock } from "../../../src/api/etcd/gen/v3lock_pb.js";

const { BYTES, INT64, MESSAGE } = FieldDescriptorProto_Type;
const OPTIONAL = FieldDescriptorProto_Label.OPTIONAL;

/** [name, number, type, type name] of each field; every field is a proto3 singular one. */
type FieldFixture = readonly [string, number, FieldDescriptorProto_Type, string];

const HEADER: FieldFixture = ["header", 1, MESSAGE, ".etcdserverpb.ResponseHeader"];

/** etcd 3.4's messages of the two packages. */
const ETCD_MESSAGES: Readonly<Record<string, readonly FieldFixture[]>> = {
  "v3electionpb.CampaignRequest": [
    ["name", 1, BYTES, ""],
    ["lease", 2, INT64, ""],
    ["value", 3, BYTES, ""],
  ],
  "v3electionpb.CampaignResponse": [HEADER, ["leader", 2, MESSAGE, ".v3electionpb.LeaderKey"]],
  "v3electionpb.LeaderKey": [
    ["name", 1, BYTES, ""],
    ["key", 2, BYTES, ""],
    ["rev", 3, INT64, ""],
    ["lease", 4, INT64, ""],
  ],
  "v3electionpb.LeaderRequest": [["name", 1, BYTES, ""]],
  "v3electionpb.LeaderResponse": [HEADER, ["kv", 2, MESSAGE, ".mvccpb.KeyValue"]],
  "v3electionpb.ResignRequest": [["leader", 1, MESSAGE, ".v3electionpb.LeaderKey"]],
  "v3electionpb.ResignResponse": [HEADER],
  "v3electionpb.ProclaimRequest": [
    ["leader", 1, MESSAGE, ".v3electionpb.LeaderKey"],
    ["value", 2, BYTES, ""],
  ],
  "v3electionpb.ProclaimResponse": [HEADER],
  "v3lockpb.LockRequest": [
    ["name", 1, BYTES, ""],
    ["lease", 2, INT64, ""],
  ],
  "v3lockpb.LockResponse": [HEADER, ["key", 2, BYTES, ""]],
  "v3lockpb.UnlockRequest": [["key", 1, BYTES, ""]],
  "v3lockpb.UnlockResponse": [HEADER],
};

/** etcd 3.4's methods: input, output, and whether the server streams its answers. */
const ETCD_METHODS: Readonly<Record<string, readonly [string, string, boolean]>> = {
  "v3electionpb.Election/Campaign": ["CampaignRequest", "CampaignResponse", false],
  "v3electionpb.Election/Proclaim": ["ProclaimRequest", "ProclaimResponse", false],
  "v3electionpb.Election/Leader": ["LeaderRequest", "LeaderResponse", false],
  "v3electionpb.Election/Observe": ["LeaderRequest", "LeaderResponse", true],
  "v3electionpb.Election/Resign": ["ResignRequest", "ResignResponse", false],
  "v3lockpb.Lock/Lock": ["LockRequest", "LockResponse", false],
  "v3lockpb.Lock/Unlock": ["UnlockRequest", "UnlockResponse", false],
};

function describeField(field: FieldFixture): string {
  const [name, number, type, typeName] = field;
  return `${name} #${number} type=${type} label=${OPTIONAL} typeName=${typeName}`;
}

/** Every way the files differ from the fixture, one line each; empty when the contract holds. */
function contractDifferences(files: readonly FileDescriptorProto[]): string[] {
  const differences: string[] = [];
  const messages = new Map<string, string[]>();
  const methods = new Map<string, string>();
  for (const file of files) {
    for (const message of file.messageType) {
      messages.set(
        `${file.package}.${message.name}`,
        message.field.map(
          (f) =>
            `${f.name} #${f.number} type=${f.type} label=${f.label} typeName=${f.typeName}` +
            (isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex) ? ` oneof=${f.oneofIndex}` : ""),
        ),
      );
      if (message.nestedType.length > 0 || message.enumType.length > 0)
        differences.push(`${file.package}.${message.name} nests types etcd's does not`);
    }
    for (const service of file.service) {
      for (const method of service.method) {
        methods.set(
          `${file.package}.${service.name}/${method.name}`,
          `${method.inputType} -> ${method.outputType} clientStreaming=${method.clientStreaming === true} serverStreaming=${method.serverStreaming === true}`,
        );
      }
    }
  }
  for (const [name, fields] of Object.entries(ETCD_MESSAGES)) {
    const mine = messages.get(name);
    const theirs = fields.map(describeField);
    if (mine === undefined) differences.push(`message ${name} missing`);
    else if (JSON.stringify([...mine].sort()) !== JSON.stringify([...theirs].sort()))
      differences.push(`${name}: etcd ${theirs.join(", ")}; ours ${mine.join(", ")}`);
  }
  for (const name of messages.keys()) {
    if (!(name in ETCD_MESSAGES)) differences.push(`message ${name} is not etcd's`);
  }
  for (const [name, [input, output, serverStreaming]] of Object.entries(ETCD_METHODS)) {
    const pkg = name.slice(0, name.indexOf("."));
    const theirs = `.${pkg}.${input} -> .${pkg}.${output} clientStreaming=false serverStreaming=${serverStreaming}`;
    const mine = methods.get(name);
    if (mine !== theirs) differences.push(`method ${name}: etcd ${theirs}, ours ${mine ?? "missing"}`);
  }
  for (const name of methods.keys()) {
    if (!(name in ETCD_METHODS)) differences.push(`method ${name} is not etcd's`);
  }
  return differences;
}

const ours = (): FileDescriptorProto[] =>
  [file_v3election.proto, file_v3lock.proto].map((f) => clone(FileDescriptorProtoSchema, f));

test("the generated Election and Lock descriptors match etcd 3.4's field by field", () => {
  const files = ours();
  assert.deepEqual(
    files.map((f) => [f.package, f.syntax]),
    [
      ["v3electionpb", "proto3"],
      ["v3lockpb", "proto3"],
    ],
  );
  assert.deepEqual(contractDifferences(files), []);
});

test("a changed field number, a renamed field and a streaming flag are each reported", () => {
  const files = ours();
  const [election, lock] = files;
  assert.ok(election !== undefined && lock !== undefined);
  const leaderKey = election.messageType.find((m) => m.name === "LeaderKey");
  const rev = leaderKey?.field.find((f) => f.name === "rev");
  assert.ok(rev !== undefined);
  rev.number = 5;
  const lockRequest = lock.messageType.find((m) => m.name === "LockRequest");
  const lease = lockRequest?.field.find((f) => f.name === "lease");
  assert.ok(lease !== undefined);
  lease.name = "lease_id";
  const observe = election.service[0]?.method.find((m) => m.name === "Observe");
  assert.ok(observe !== undefined);
  observe.serverStreaming = false;
  const differences = contractDifferences(files);
  assert.equal(differences.length, 3, differences.join("\n"));
  assert.ok(differences.some((d) => d.startsWith("v3electionpb.LeaderKey:") && d.includes("rev #5")));
  assert.ok(differences.some((d) => d.startsWith("v3lockpb.LockRequest:") && d.includes("lease_id #2")));
  assert.ok(differences.some((d) => d.startsWith("method v3electionpb.Election/Observe:")));
});
