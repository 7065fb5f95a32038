/**
 * etcdctl's `txn` script: compares, a blank line, success ops, a blank line, failure ops
 * (a final blank line or the end of input ends the last section).
 *
 *   mod("key1") > "0"                 target("key") op "value"; targets c/create, m/mod,
 *   value("key2") = "v"               ver/version, val/value, lease; ops = != < >
 *
 *   put key1 "new value"              put <key> <value> [--lease=<hex>] [--prev-kv]
 *   get key2 --prefix                 get <key> [end] [--prefix] [--from-key] [--limit=n] [--rev=n] ...
 *   del key3                          del <key> [end] [--prefix] [--from-key] [--prev-kv]
 *
 * Words may be double-quoted with Go/JSON escapes. A malformed line throws UsageError naming it.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  type CompareSchema,
  type RequestOpSchema,
  type TxnRequestSchema,
} from "../../api/etcd/gen/rpc_pb.js";
import { UsageError } from "./errors.js";
import { bytes, deleteRequest, parseCount, parseLeaseId, putRequest, rangeRequest } from "./requests.js";

type CompareInit = MessageInitShape<typeof CompareSchema>;
type RequestOpInit = MessageInitShape<typeof RequestOpSchema>;
export type TxnInit = MessageInitShape<typeof TxnRequestSchema> & {
  compare: CompareInit[];
  success: RequestOpInit[];
  failure: RequestOpInit[];
};

const RESULTS: Record<string, Compare_CompareResult> = {
  "=": Compare_CompareResult.Equal,
  "!=": Compare_CompareResult.NotEqual,
  "<": Compare_CompareResult.Less,
  ">": Compare_CompareResult.Greater,
};

/** Splits a line into words; "double quoted" words take Go/JSON escapes. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  const word = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let match = word.exec(line); match !== null; match = word.exec(line)) {
    if (match[1] === undefined) {
      words.push(match[2]!);
      continue;
    }
    try {
      words.push(JSON.parse(`"${match[1]}"`) as string);
    } catch {
      throw new UsageError(`bad quoted string ${match[0]}`);
    }
  }
  return words;
}

/** One compare line: target("key") op "value". */
export function parseCompare(line: string): CompareInit {
  const match = /^\s*(\w+)\(\s*("(?:[^"\\]|\\.)*")\s*\)\s*(=|!=|<|>)\s*("(?:[^"\\]|\\.)*")\s*$/.exec(line);
  if (match === null) throw new UsageError(`malformed comparison: ${line}`);
  const [, target, quotedKey, op, quotedValue] = match;
  const [key] = splitWords(quotedKey!);
  const [value] = splitWords(quotedValue!);
  const result = RESULTS[op!]!;
  const number = () => BigInt.asIntN(64, parseCount(value!, `comparison value in "${line}"`));
  const compare = (targetKind: Compare_CompareTarget, union: CompareInit["targetUnion"]): CompareInit => ({
    result,
    target: targetKind,
    key: bytes(key!),
    ...(union === undefined ? {} : { targetUnion: union }),
  });
  switch (target) {
    case "ver":
    case "version":
      return compare(Compare_CompareTarget.Version, { case: "version", value: number() });
    case "c":
    case "create":
      return compare(Compare_CompareTarget.Create, { case: "createRevision", value: number() });
    case "m":
    case "mod":
      return compare(Compare_CompareTarget.Mod, { case: "modRevision", value: number() });
    case "val":
    case "value":
      return compare(Compare_CompareTarget.Value, { case: "value", value: bytes(value!) });
    case "lease":
      return compare(Compare_CompareTarget.Lease, { case: "lease", value: parseLeaseId(value!) });
    default:
      throw new UsageError(`malformed comparison: ${line} (unknown target ${target})`);
  }
}

/** `--name=value`, `--name value` and bare `--name` flags among positional words. */
function splitFlags(
  words: readonly string[],
  valued: readonly string[],
  line: string,
): { args: string[]; flags: Map<string, string> } {
  const args: string[] = [];
  const flags = new Map<string, string>();
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const flag = /^--([a-z-]+)(?:=(.*))?$/.exec(word);
    if (flag === null) {
      args.push(word);
      continue;
    }
    const name = flag[1]!;
    if (valued.includes(name)) {
      const value = flag[2] ?? words[++i];
      if (value === undefined) throw new UsageError(`flag --${name} needs a value in "${line}"`);
      flags.set(name, value);
    } else {
      if (flag[2] !== undefined && flag[2] !== "true")
        throw new UsageError(`flag --${name} takes no value in "${line}"`);
      flags.set(name, "true");
    }
  }
  return { args, flags };
}

function checkFlags(
  flags: Map<string, string>,
  allowed: readonly string[],
  verb: string,
  line: string,
): void {
  for (const name of flags.keys()) {
    if (!allowed.includes(name)) throw new UsageError(`unknown flag --${name} for ${verb} in "${line}"`);
  }
}

/** One op line: put, get or del with etcdctl's flags. */
export function parseOp(line: string): RequestOpInit {
  const [verb, ...rest] = splitWords(line);
  const valued = ["lease", "limit", "rev", "sort-by", "order"];
  const { args, flags } = splitFlags(rest, valued, line);
  const has = (name: string) => flags.get(name) === "true";
  switch (verb) {
    case "put": {
      checkFlags(flags, ["lease", "prev-kv"], verb, line);
      if (args.length !== 2) throw new UsageError(`put needs <key> <value> in "${line}"`);
      const lease = flags.get("lease");
      return {
        request: {
          case: "requestPut",
          value: putRequest(args[0]!, args[1]!, {
            ...(lease === undefined ? {} : { lease }),
            prevKv: has("prev-kv"),
          }),
        },
      };
    }
    case "get": {
      checkFlags(
        flags,
        ["prefix", "from-key", "limit", "rev", "sort-by", "order", "keys-only", "count-only"],
        verb,
        line,
      );
      if (args.length < 1 || args.length > 2)
        throw new UsageError(`get needs <key> [range_end] in "${line}"`);
      const optional = (name: string) => {
        const value = flags.get(name);
        return value === undefined ? undefined : value;
      };
      const limit = optional("limit");
      const rev = optional("rev");
      const sortBy = optional("sort-by");
      const order = optional("order");
      return {
        request: {
          case: "requestRange",
          value: rangeRequest(args[0]!, args[1], {
            prefix: has("prefix"),
            fromKey: has("from-key"),
            keysOnly: has("keys-only"),
            countOnly: has("count-only"),
            ...(limit === undefined ? {} : { limit }),
            ...(rev === undefined ? {} : { rev }),
            ...(sortBy === undefined ? {} : { sortBy }),
            ...(order === undefined ? {} : { order }),
          }),
        },
      };
    }
    case "del":
    case "delete": {
      checkFlags(flags, ["prefix", "from-key", "prev-kv"], verb, line);
      if (args.length < 1 || args.length > 2)
        throw new UsageError(`del needs <key> [range_end] in "${line}"`);
      return {
        request: {
          case: "requestDeleteRange",
          value: deleteRequest(args[0]!, args[1], {
            prefix: has("prefix"),
            fromKey: has("from-key"),
            prevKv: has("prev-kv"),
          }),
        },
      };
    }
    default:
      throw new UsageError(`invalid txn request "${line}": expected put, get or del`);
  }
}

/** Parses a whole script (see the module comment). */
export function parseTxnScript(script: string): TxnInit {
  const lines = script.split(/\r?\n/);
  const sections: string[][] = [[], [], []];
  let section = 0;
  for (const line of lines) {
    if (line.trim() === "") {
      // A blank line ends a section; blank lines after the failure section change nothing.
      section += 1;
      if (section > 2) break;
      continue;
    }
    sections[section]!.push(line);
  }
  return {
    compare: sections[0]!.map(parseCompare),
    success: sections[1]!.map(parseOp),
    failure: sections[2]!.map(parseOp),
  };
}
