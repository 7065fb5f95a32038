/**
 * The flags of `concord start` (etcd's names and defaults) and their validation into a
 * StartConfig: everything `concord start` needs, checked before anything touches the disk.
 * Any problem is a UsageError naming the flag. Also Concord's own flags of automatic range
 * splits and merges (`--auto-split`, `--split-*`, `--auto-merge`, `--merge-*`), listed in
 * SPLIT_OPTIONS for the command's help.
 */
import { resolve } from "node:path";
import { LINEARIZABLE_READS, type LinearizableReads } from "../api/linearizable-reads.js";
import { etcdClusterId } from "../api/etcd/context.js";
import { joinedMemberIdOf } from "../api/etcd/member-ids.js";
import type { SplitPolicyOptions } from "../placement/split/policy.js";
import type { NodeId } from "../raft/types.js";
import { DEFAULT_COMMIT_NOTICE_DELAY_MS } from "../node/options.js";
import { UsageError } from "./errors.js";
import { clusterIdOf, memberIdOf } from "./member-id.js";
import { bindAddress, parseUrl, parseUrlList, sameEndpoint, type HostPort, type ParsedUrl } from "./urls.js";

/** The flags as strings, after commander applied the defaults below. */
export interface StartFlags {
  readonly name: string;
  /** Absent means `<name>.concord` in the working directory. */
  readonly dataDir?: string | undefined;
  readonly listenClientUrls: string;
  /** `--listen-metrics-urls`: extra plain HTTP ports for /metrics and /health. Absent: none. */
  readonly listenMetricsUrls?: string | undefined;
  readonly advertiseClientUrls: string;
  readonly listenPeerUrls: string;
  readonly initialAdvertisePeerUrls: string;
  /** Absent means this member alone: `<name>=<initial-advertise-peer-urls>`, as etcd does. */
  readonly initialCluster?: string | undefined;
  readonly initialClusterState: string;
  readonly initialClusterToken: string;
  /** A bare `--auto-split` comes as true; `--auto-split=<bool>` as its text. Absent: on. */
  readonly autoSplit?: string | boolean | undefined;
  /** The `--split-*` thresholds; absent ones keep the split policy's defaults. */
  readonly splitLoadOps?: string | undefined;
  readonly splitLoadWindows?: string | undefined;
  readonly splitMaxRangeBytes?: string | undefined;
  readonly splitCooldown?: string | undefined;
  /** As `autoSplit`, for `--auto-merge`. Absent: as `--auto-split`. */
  readonly autoMerge?: string | boolean | undefined;
  /** The `--merge-*` thresholds; absent ones keep the policy's defaults. */
  readonly mergeMaxBytes?: string | undefined;
  readonly mergeMaxOps?: string | undefined;
  readonly mergeWindows?: string | undefined;
  readonly mergeDelayAfterSplit?: string | undefined;
  /** `--linearizable-reads`: lease or read-index. Absent: lease. */
  readonly linearizableReads?: string | undefined;
  /** `--commit-notice-delay`: milliseconds, 0 to 1000. Absent: 20. */
  readonly commitNoticeDelay?: string | undefined;
  /** `--auto-compaction-retention`: a duration ("1h", "30m", "1h30m") or hours. Absent or "0": off. */
  readonly autoCompactionRetention?: string | undefined;
  /** `--auto-compaction-mode`: periodic (the only mode here). */
  readonly autoCompactionMode?: string | undefined;
}

/**
 * The split and merge flags as commander declares them (kebab case, as etcd names its flags), for
 * `concord start --help`. Defaults live in src/placement/split/policy.ts, so none is given here.
 */
export const SPLIT_OPTIONS = [
  {
    flags: "--auto-split [bool]",
    description: "split ranges by load and size on their own: true or false (default true)",
  },
  {
    flags: "--split-load-ops <n>",
    description: "requests per second that make a range's window hot (default 1000)",
  },
  {
    flags: "--split-load-windows <n>",
    description: "consecutive hot one-second windows before a load split (default 15)",
  },
  {
    flags: "--split-max-range-bytes <n>",
    description: "a range larger than this many bytes splits at its size median (default 67108864)",
  },
  {
    flags: "--split-cooldown <ms>",
    description: "milliseconds both halves of a split wait before either splits again (default 30000)",
  },
  {
    flags: "--auto-merge [bool]",
    description:
      "merge adjacent small, cold ranges back on their own: true or false (default: as --auto-split)",
  },
  {
    flags: "--merge-max-bytes <n>",
    description: "two adjacent ranges merge only while their sizes add up to less (default 8388608)",
  },
  {
    flags: "--merge-max-ops <n>",
    description: "... and each takes fewer requests per second than this (default 100)",
  },
  {
    flags: "--merge-windows <n>",
    description: "... in each of this many one-second windows in a row (default 60)",
  },
  {
    flags: "--merge-delay-after-split <ms>",
    description: "milliseconds both halves of a split stay apart, however cold (default 300000)",
  },
] as const;

/** The split and merge flags' names without dashes, for the `-flag` spelling etcd's parser accepts. */
export const SPLIT_FLAG_NAMES = SPLIT_OPTIONS.map((option) => option.flags.slice(2).split(" ")[0]!);

/** What `concord start` passes to Concord.open about splits and merges. */
export interface SplitConfig {
  readonly autoSplit: boolean;
  readonly autoMerge: boolean;
  /** Only the thresholds given on the command line. */
  readonly policy: SplitPolicyOptions;
}

export const START_DEFAULTS = {
  name: "default",
  listenClientUrls: "http://localhost:2379",
  advertiseClientUrls: "http://localhost:2379",
  listenPeerUrls: "http://localhost:2380",
  initialAdvertisePeerUrls: "http://localhost:2380",
  initialClusterState: "new",
  initialClusterToken: "concord-cluster",
} as const;

export type ClusterState = "new" | "existing";

export interface ClusterMember {
  readonly name: string;
  readonly id: NodeId;
  /** Where the other members dial it. */
  readonly peerUrl: ParsedUrl;
}

export interface StartConfig {
  readonly name: string;
  /**
   * A founding member's id derives from its name, a joining member's (`existing` on a fresh
   * data dir) from its peer URL, as MemberAdd derived it; a restart uses the id in cluster.json.
   */
  readonly memberId: NodeId;
  /** Absolute. */
  readonly dataDir: string;
  readonly listenClient: HostPort;
  /** Where metrics ports listen (`--listen-metrics-urls`); empty: none. */
  readonly listenMetrics: readonly HostPort[];
  readonly advertiseClientUrls: readonly string[];
  readonly listenPeer: HostPort;
  readonly advertisePeerUrl: string;
  /**
   * Every member of --initial-cluster, this one included, in flag order. Ids derive from names
   * (founding members); a joining member's own entry has its peer-URL id. A joiner dials the
   * others at these addresses until the member table it receives tells it better.
   */
  readonly members: readonly ClusterMember[];
  readonly clusterState: ClusterState;
  readonly clusterToken: string;
  readonly clusterId: string;
  readonly split: SplitConfig;
  readonly linearizableReads: LinearizableReads;
  /** NodeHostOptions.commitNoticeDelayMs. */
  readonly commitNoticeDelayMs: number;
  /** History kept by periodic auto-compaction, in milliseconds; 0: off. */
  readonly autoCompactionRetentionMs: number;
}

function parseLinearizableReads(text: string | undefined): LinearizableReads {
  if (text === undefined) return "lease";
  const mode = LINEARIZABLE_READS.find((known) => known === text);
  if (mode === undefined) {
    throw new UsageError(`--linearizable-reads: expected ${LINEARIZABLE_READS.join(" or ")}, got "${text}"`);
  }
  return mode;
}

/** Beyond this the heartbeat (every 100 ms) tells followers first: a larger value is a typo. */
const MAX_COMMIT_NOTICE_DELAY_MS = 1_000;

function parseCommitNoticeDelay(text: string | undefined): number {
  if (text === undefined) return DEFAULT_COMMIT_NOTICE_DELAY_MS;
  const ms = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!(ms <= MAX_COMMIT_NOTICE_DELAY_MS)) {
    throw new UsageError(
      `--commit-notice-delay: expected whole milliseconds from 0 to ${MAX_COMMIT_NOTICE_DELAY_MS}, got "${text}"`,
    );
  }
  return ms;
}

function single(flag: string, urls: readonly ParsedUrl[]): ParsedUrl {
  const [first, ...rest] = urls;
  if (first === undefined || rest.length > 0) {
    throw new UsageError(`${flag}: Concord takes exactly one URL here for now, got ${urls.length}`);
  }
  return first;
}

function nonEmpty(flag: string, value: string): string {
  if (value.trim() === "") throw new UsageError(`${flag} must not be empty`);
  return value;
}

/** Parses `name=http://host:port,...` into members with their derived ids. */
function parseInitialCluster(text: string, clusterToken: string): ClusterMember[] {
  const flag = "--initial-cluster";
  const members: ClusterMember[] = [];
  const byName = new Set<string>();
  const byId = new Map<NodeId, string>();
  for (const entry of text.split(",")) {
    if (entry.trim() === "") continue;
    const equals = entry.indexOf("=");
    if (equals <= 0) {
      throw new UsageError(`${flag}: "${entry}" is not name=http://host:port`);
    }
    const name = entry.slice(0, equals).trim();
    if (byName.has(name)) {
      throw new UsageError(`${flag}: member name "${name}" appears twice; names must be unique`);
    }
    const peerUrl = parseUrl(flag, entry.slice(equals + 1), { allowPortZero: false });
    const id = memberIdOf(name, clusterToken);
    const clash = byId.get(id);
    if (clash !== undefined) {
      throw new UsageError(`${flag}: members "${clash}" and "${name}" derive the same member id; rename one`);
    }
    byName.add(name);
    byId.set(id, name);
    members.push({ name, id, peerUrl });
  }
  if (members.length === 0) throw new UsageError(`${flag}: expected at least one name=http://host:port`);
  return members;
}

function parseClusterState(text: string): ClusterState {
  if (text === "new" || text === "existing") return text;
  throw new UsageError(`--initial-cluster-state: expected "new" or "existing", got "${text}"`);
}

/** Validates the flags; `cwd` resolves a relative data dir. */
export function resolveStartConfig(flags: StartFlags, cwd: string): StartConfig {
  const name = nonEmpty("--name", flags.name);
  if (name.includes("=") || name.includes(",")) {
    throw new UsageError(`--name: "${name}" must not contain "=" or ","`);
  }
  const clusterToken = nonEmpty("--initial-cluster-token", flags.initialClusterToken);
  const clusterState = parseClusterState(flags.initialClusterState);
  const listenClientUrl = single(
    "--listen-client-urls",
    parseUrlList("--listen-client-urls", flags.listenClientUrls, { allowPortZero: true }),
  );
  const listenPeerUrl = single(
    "--listen-peer-urls",
    parseUrlList("--listen-peer-urls", flags.listenPeerUrls, { allowPortZero: true }),
  );
  const advertiseClientUrls = parseUrlList("--advertise-client-urls", flags.advertiseClientUrls, {
    allowPortZero: false,
  });
  const advertisePeer = single(
    "--initial-advertise-peer-urls",
    parseUrlList("--initial-advertise-peer-urls", flags.initialAdvertisePeerUrls, { allowPortZero: false }),
  );
  const listed = parseInitialCluster(flags.initialCluster ?? `${name}=${advertisePeer.url}`, clusterToken);
  const members = clusterState === "new" ? listed : withJoinedSelf(listed, name, advertisePeer, clusterToken);
  const self = members.find((member) => member.name === name);
  if (self === undefined) {
    throw new UsageError(
      `--initial-cluster: this member's --name "${name}" is not in it (members: ${members.map((m) => m.name).join(", ")})`,
    );
  }
  if (!sameEndpoint(self.peerUrl, advertisePeer)) {
    throw new UsageError(
      `--initial-cluster gives "${name}" the peer URL ${self.peerUrl.url} but --initial-advertise-peer-urls is ${advertisePeer.url}; they must match`,
    );
  }
  const dataDir = flags.dataDir === undefined ? `${name}.concord` : nonEmpty("--data-dir", flags.dataDir);
  return {
    name,
    memberId: self.id,
    dataDir: resolve(cwd, dataDir),
    listenClient: bindAddress("--listen-client-urls", listenClientUrl),
    listenMetrics:
      flags.listenMetricsUrls === undefined
        ? []
        : parseUrlList("--listen-metrics-urls", flags.listenMetricsUrls, { allowPortZero: true }).map((url) =>
            bindAddress("--listen-metrics-urls", url),
          ),
    advertiseClientUrls: advertiseClientUrls.map((url) => url.url),
    listenPeer: bindAddress("--listen-peer-urls", listenPeerUrl),
    advertisePeerUrl: advertisePeer.url,
    members,
    clusterState,
    clusterToken,
    clusterId: clusterIdOf(clusterToken),
    split: parseSplitFlags(flags),
    linearizableReads: parseLinearizableReads(flags.linearizableReads),
    commitNoticeDelayMs: parseCommitNoticeDelay(flags.commitNoticeDelay),
    autoCompactionRetentionMs: parseAutoCompaction(flags.autoCompactionRetention, flags.autoCompactionMode),
  };
}

const DURATION_UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
/** The shortest retention auto-compaction takes: it compacts once per retention. */
const MIN_AUTO_COMPACTION_RETENTION_MS = 1_000;

/**
 * `--auto-compaction-retention` as etcd reads it in periodic mode: a Go duration ("1h",
 * "30m", "1h30m", "90s") or a bare number of hours ("1", "0.5"); "0" (the default) turns
 * auto-compaction off. `--auto-compaction-mode revision` is refused: it keeps the last N
 * revisions, and Concord's revisions are HLC timestamps, not a count of writes.
 */
function parseAutoCompaction(retention: string | undefined, mode: string | undefined): number {
  if (mode !== undefined && mode !== "periodic") {
    const why =
      mode === "revision"
        ? "revision mode keeps the last N revisions, and Concord's revisions are timestamps, not a count of writes; use periodic with a duration"
        : `expected periodic, got "${mode}"`;
    throw new UsageError(`--auto-compaction-mode: ${why}`);
  }
  if (retention === undefined) return 0;
  const flag = "--auto-compaction-retention";
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(retention)) {
    ms = Number(retention) * DURATION_UNIT_MS["h"]!;
  } else {
    const parts = [...retention.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
    if (parts.length === 0 || parts.map((part) => part[0]).join("") !== retention) {
      throw new UsageError(
        `${flag}: expected a duration like 1h, 30m or 1h30m (or hours), got "${retention}"`,
      );
    }
    ms = parts.reduce((sum, part) => sum + Number(part[1]) * DURATION_UNIT_MS[part[2]!]!, 0);
  }
  ms = Math.round(ms);
  if (ms === 0) return 0;
  if (ms < MIN_AUTO_COMPACTION_RETENTION_MS || !Number.isSafeInteger(ms)) {
    throw new UsageError(`${flag}: expected 0 (off) or at least 1s, got "${retention}"`);
  }
  return ms;
}

/** Go's strconv.ParseBool spellings, which etcd's boolean flags take. */
const GO_TRUE = ["1", "t", "T", "true", "TRUE", "True"];
const GO_FALSE = ["0", "f", "F", "false", "FALSE", "False"];

function parseBoolFlag(flag: string, value: string | boolean | undefined): boolean | undefined {
  if (value === undefined || typeof value === "boolean") return value;
  if (GO_TRUE.includes(value)) return true;
  if (GO_FALSE.includes(value)) return false;
  throw new UsageError(`${flag}: expected true or false, got "${value}"`);
}

/** A decimal number (no hex, no exponent, no sign) at least `min`; whole when `integer`. */
function parseNumberFlag(
  flag: string,
  text: string | undefined,
  rule: { readonly integer: boolean; readonly min: number },
): number | undefined {
  if (text === undefined) return undefined;
  const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : NaN;
  const wanted = `${rule.integer ? "a whole number" : "a number"} >= ${rule.min}`;
  if (!Number.isFinite(value) || value < rule.min || (rule.integer && !Number.isSafeInteger(value))) {
    throw new UsageError(`${flag}: expected ${wanted}, got "${text}"`);
  }
  return value;
}

/**
 * The split and merge flags: thresholds only when given (the policy's defaults stay the
 * defaults), and thresholds together with `--auto-split=false` (or `--auto-merge=false` for the
 * merge ones) refused, since they would change nothing.
 */
export function parseSplitFlags(flags: StartFlags): SplitConfig {
  const autoSplit = parseBoolFlag("--auto-split", flags.autoSplit) ?? true;
  const autoMerge = parseBoolFlag("--auto-merge", flags.autoMerge) ?? autoSplit;
  const whole = { integer: true, min: 1 };
  const loadSplitOpsPerSecond = parseNumberFlag("--split-load-ops", flags.splitLoadOps, {
    integer: false,
    min: 1,
  });
  const loadSplitWindows = parseNumberFlag("--split-load-windows", flags.splitLoadWindows, whole);
  const maxRangeBytes = parseNumberFlag("--split-max-range-bytes", flags.splitMaxRangeBytes, whole);
  const cooldownMs = parseNumberFlag("--split-cooldown", flags.splitCooldown, { integer: true, min: 0 });
  const mergeMaxBytes = parseNumberFlag("--merge-max-bytes", flags.mergeMaxBytes, whole);
  const mergeMaxOpsPerSecond = parseNumberFlag("--merge-max-ops", flags.mergeMaxOps, {
    integer: false,
    min: 1,
  });
  const mergeWindows = parseNumberFlag("--merge-windows", flags.mergeWindows, whole);
  const mergeDelayAfterSplitMs = parseNumberFlag("--merge-delay-after-split", flags.mergeDelayAfterSplit, {
    integer: true,
    min: 0,
  });
  const splitThresholds: SplitPolicyOptions = {
    ...(loadSplitOpsPerSecond === undefined ? {} : { loadSplitOpsPerSecond }),
    ...(loadSplitWindows === undefined ? {} : { loadSplitWindows }),
    ...(maxRangeBytes === undefined ? {} : { maxRangeBytes }),
    ...(cooldownMs === undefined ? {} : { cooldownMs }),
  };
  const mergeThresholds: SplitPolicyOptions = {
    ...(mergeMaxBytes === undefined ? {} : { mergeMaxBytes }),
    ...(mergeMaxOpsPerSecond === undefined ? {} : { mergeMaxOpsPerSecond }),
    ...(mergeWindows === undefined ? {} : { mergeWindows }),
    ...(mergeDelayAfterSplitMs === undefined ? {} : { mergeDelayAfterSplitMs }),
  };
  if (!autoSplit && Object.keys(splitThresholds).length > 0) {
    throw new UsageError(
      "--split-load-ops, --split-load-windows, --split-max-range-bytes and --split-cooldown have no effect with --auto-split=false; drop them or the --auto-split=false",
    );
  }
  if (!autoMerge && Object.keys(mergeThresholds).length > 0) {
    throw new UsageError(
      "--merge-max-bytes, --merge-max-ops, --merge-windows and --merge-delay-after-split have no effect with --auto-merge=false; drop them or the --auto-merge=false",
    );
  }
  return { autoSplit, autoMerge, policy: { ...splitThresholds, ...mergeThresholds } };
}

/** A joining member's entry gets the id MemberAdd gave its peer URL. */
function withJoinedSelf(
  members: readonly ClusterMember[],
  name: string,
  advertisePeer: ParsedUrl,
  clusterToken: string,
): ClusterMember[] {
  const id = joinedMemberIdOf(etcdClusterId(clusterIdOf(clusterToken)), [advertisePeer.url]);
  const clash = members.find((member) => member.id === id && member.name !== name);
  if (clash !== undefined) {
    throw new UsageError(
      `--initial-cluster: members "${clash.name}" and "${name}" derive the same member id`,
    );
  }
  return members.map((member) => (member.name === name ? { ...member, id } : member));
}
