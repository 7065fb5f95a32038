/**
 * The data dir's identity file, `cluster.json`: written when `concord start` first founds a
 * member in a data dir, compared on every later start so a data dir is never reused by another
 * cluster or another member. Inspection never writes; a first start that fails is rolled back
 * so a failed start leaves the disk as it found it.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { NodeId } from "../raft/types.js";
import { RuntimeError } from "./errors.js";
import { formatMemberId } from "./member-id.js";
import type { StartConfig } from "./start-config.js";

export const CLUSTER_FILE = "cluster.json";
const FORMAT = 1;

export interface ClusterRecord {
  readonly format: typeof FORMAT;
  readonly clusterToken: string;
  readonly clusterId: string;
  readonly name: string;
  readonly memberId: NodeId;
  /** The members --initial-cluster gave on the first start (the founders, unless `joined`). */
  readonly members: readonly { readonly name: string; readonly id: NodeId; readonly peerUrl: string }[];
  /**
   * The member joined a running cluster (`--initial-cluster-state existing` on its first start)
   * instead of founding one: it never bootstraps the group, on any start. Absent: false.
   */
  readonly joined?: boolean;
}

export type DataDirState =
  /** Absent or empty: the first start of this member. */
  | { readonly kind: "fresh"; readonly exists: boolean }
  /** Holds a member of this very cluster. */
  | { readonly kind: "existing"; readonly record: ClusterRecord };

export function recordOf(config: StartConfig): ClusterRecord {
  return {
    format: FORMAT,
    clusterToken: config.clusterToken,
    clusterId: config.clusterId,
    name: config.name,
    memberId: config.memberId,
    members: config.members.map((member) => ({
      name: member.name,
      id: member.id,
      peerUrl: member.peerUrl.url,
    })),
    ...(config.clusterState === "existing" ? { joined: true } : {}),
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isMember(value: unknown): value is ClusterRecord["members"][number] {
  return (
    isRecord(value) &&
    typeof value["name"] === "string" &&
    Number.isSafeInteger(value["id"]) &&
    typeof value["peerUrl"] === "string"
  );
}

/** Parses a cluster.json text; `where` names the file in errors. */
export function parseClusterRecord(text: string, where: string): ClusterRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RuntimeError(`${where} is not valid JSON (${errorText(error)}); the data dir is damaged`);
  }
  if (
    !isRecord(value) ||
    value["format"] !== FORMAT ||
    typeof value["clusterToken"] !== "string" ||
    typeof value["clusterId"] !== "string" ||
    typeof value["name"] !== "string" ||
    !Number.isSafeInteger(value["memberId"]) ||
    !Array.isArray(value["members"]) ||
    !value["members"].every(isMember) ||
    (value["joined"] !== undefined && typeof value["joined"] !== "boolean")
  ) {
    throw new RuntimeError(
      `${where} is not a Concord cluster file of format ${FORMAT}; the data dir is damaged`,
    );
  }
  return value as unknown as ClusterRecord;
}

function describeMembers(members: ClusterRecord["members"]): string {
  return members.map((member) => `${member.name}=${member.peerUrl}`).join(",");
}

/**
 * Throws unless `stored` (from the data dir) is this member of this cluster: same token and
 * name; a founding member started with `new` must also name the same founding members (ids;
 * peer URLs may change). The member id and cluster id of a restart are the stored ones, as
 * etcd ignores its --initial-* flags once a member has data.
 */
export function checkRecord(stored: ClusterRecord, config: StartConfig): void {
  const dir = config.dataDir;
  if (stored.clusterToken !== config.clusterToken) {
    throw new RuntimeError(
      `data dir ${dir} belongs to another cluster: it was created with --initial-cluster-token "${stored.clusterToken}", not "${config.clusterToken}"`,
    );
  }
  if (stored.name !== config.name) {
    throw new RuntimeError(
      `data dir ${dir} belongs to member "${stored.name}" (id ${formatMemberId(stored.memberId)}), not "${config.name}" (id ${formatMemberId(config.memberId)})`,
    );
  }
  const ids = (members: readonly { readonly id: NodeId }[]) =>
    members
      .map((member) => member.id)
      .sort((a, b) => a - b)
      .join(",");
  if (
    stored.joined !== true &&
    config.clusterState === "new" &&
    ids(stored.members) !== ids(config.members)
  ) {
    throw new RuntimeError(
      `data dir ${dir} belongs to another cluster: it was founded with --initial-cluster ${describeMembers(stored.members)}, not ${describeMembers(recordOf(config).members)}`,
    );
  }
}

/** Reads the data dir and decides whether this start may use it. Never writes. */
export function inspectDataDir(config: StartConfig): DataDirState {
  const dir = config.dataDir;
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) {
      throw new RuntimeError(`data dir ${dir} exists but is not a directory`);
    }
    entries = readdirSync(dir);
  } catch (error) {
    if (error instanceof RuntimeError) throw error;
    if (isErrno(error, "ENOENT")) return { kind: "fresh", exists: false };
    throw new RuntimeError(`cannot read data dir ${dir}: ${errorText(error)}`);
  }
  if (!entries.includes(CLUSTER_FILE)) {
    if (entries.length === 0) return { kind: "fresh", exists: true };
    throw new RuntimeError(
      `data dir ${dir} is not empty but has no ${CLUSTER_FILE}; it was not made by concord start, so it is left alone`,
    );
  }
  const file = join(dir, CLUSTER_FILE);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new RuntimeError(`cannot read ${file}: ${errorText(error)}`);
  }
  const record = parseClusterRecord(text, file);
  checkRecord(record, config);
  return { kind: "existing", record };
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

/** Writes `text` to `file` so a crash leaves either no file or the whole file, durably. */
function writeDurably(dir: string, file: string, text: string): void {
  const temporary = `${file}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  const handle = openSync(temporary, "r");
  try {
    fsyncSync(handle);
  } finally {
    closeSync(handle);
  }
  renameSync(temporary, file);
  const dirHandle = openSync(dir, "r");
  try {
    fsyncSync(dirHandle);
  } finally {
    closeSync(dirHandle);
  }
}

/** Undoes a first start: removes what it created, and only that. */
export type Rollback = () => void;

/**
 * Founds the member in a fresh data dir: creates the dir (owner-only, as etcd does) if absent
 * and writes cluster.json. Returns how to undo both should the node then fail to start.
 */
export function foundDataDir(config: StartConfig, state: DataDirState & { kind: "fresh" }): Rollback {
  const dir = config.dataDir;
  let rollback: Rollback;
  try {
    if (state.exists) {
      // The dir was empty, so everything in it afterwards is this start's doing.
      rollback = () => {
        for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
      };
    } else {
      const firstCreated = mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (firstCreated === undefined) throw new Error(`mkdir created nothing though ${dir} was absent`);
      rollback = () => rmSync(firstCreated, { recursive: true, force: true });
    }
  } catch (error) {
    throw new RuntimeError(`cannot create data dir ${dir}: ${errorText(error)}`);
  }
  try {
    writeDurably(dir, join(dir, CLUSTER_FILE), `${JSON.stringify(recordOf(config), null, 2)}\n`);
  } catch (error) {
    rollback();
    throw new RuntimeError(`cannot write ${join(dir, CLUSTER_FILE)}: ${errorText(error)}`);
  }
  return rollback;
}
