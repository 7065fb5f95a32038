/**
 * MemoryOrderedKv: the OrderedKv contract in memory, for tests, the simulator and embedded
 * stores that do not need durability. It is a persistent (copy-on-write) B+ tree: a write
 * copies the nodes on the paths it changes and publishes a new root, so a read view is just
 * the root it started with, costs nothing to open, and never sees later writes. Lookups and
 * single-key changes are O(log n); a scan is O(log n + pairs read).
 *
 * Within one `write`, nodes created by that write are changed in place (they are tagged with
 * the write's token and nothing else can see them yet), so a batch of many changes does not
 * copy the same path over and over. A write that throws leaves the published tree untouched.
 */
import { compareBytes } from "./bytes.js";
import {
  scanLimit,
  type KvPair,
  type OrderedKv,
  type ReadView,
  type ScanOptions,
  type WriteBatch,
} from "./engine.js";

/** Most entries (keys of a leaf, children of a branch) in one node; a fuller node splits. */
const MAX_ENTRIES = 64;
/** Fewest entries in a node other than the root; an emptier node borrows or merges. */
const MIN_ENTRIES = MAX_ENTRIES / 2;

/** Identifies one write: only nodes carrying its token may be changed in place. */
type WriteToken = object;

interface Leaf {
  readonly isLeaf: true;
  readonly owner: WriteToken | null;
  keys: Uint8Array[];
  values: Uint8Array[];
}

interface Branch {
  readonly isLeaf: false;
  readonly owner: WriteToken | null;
  /** keys[i] is the smallest key stored under children[i]. */
  keys: Uint8Array[];
  children: TreeNode[];
}

type TreeNode = Leaf | Branch;

interface Tree {
  readonly root: TreeNode;
  readonly size: number;
}

function invariant(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`memory engine invariant violated: ${message}`);
}

/** First index whose key is >= `key`. */
function lowerBound(keys: readonly Uint8Array[], key: Uint8Array): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(keys[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The child of a branch whose subtree would hold `key`: the last one starting at or below it. */
function childIndex(keys: readonly Uint8Array[], key: Uint8Array): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(keys[mid]!, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return Math.max(lo - 1, 0);
}

function firstKey(node: TreeNode): Uint8Array {
  const key = node.keys[0];
  invariant(key !== undefined, "a non-root node is empty");
  return key;
}

function writableLeaf(leaf: Leaf, token: WriteToken): Leaf {
  if (leaf.owner === token) return leaf;
  return { isLeaf: true, owner: token, keys: leaf.keys.slice(), values: leaf.values.slice() };
}

function writableBranch(branch: Branch, token: WriteToken): Branch {
  if (branch.owner === token) return branch;
  return { isLeaf: false, owner: token, keys: branch.keys.slice(), children: branch.children.slice() };
}

function writable(node: TreeNode, token: WriteToken): TreeNode {
  return node.isLeaf ? writableLeaf(node, token) : writableBranch(node, token);
}

/** Moves the upper half of an overfull node into a new right sibling. */
function split(node: TreeNode, token: WriteToken): TreeNode {
  const half = node.keys.length >>> 1;
  const keys = node.keys.splice(half);
  return node.isLeaf
    ? { isLeaf: true, owner: token, keys, values: node.values.splice(half) }
    : { isLeaf: false, owner: token, keys, children: node.children.splice(half) };
}

interface InsertResult {
  readonly node: TreeNode;
  /** A new right sibling when the node overflowed. */
  readonly split: TreeNode | null;
  readonly added: boolean;
}

function insert(node: TreeNode, key: Uint8Array, value: Uint8Array, token: WriteToken): InsertResult {
  if (node.isLeaf) {
    const leaf = writableLeaf(node, token);
    const i = lowerBound(leaf.keys, key);
    if (i < leaf.keys.length && compareBytes(leaf.keys[i]!, key) === 0) {
      leaf.values[i] = value;
      return { node: leaf, split: null, added: false };
    }
    leaf.keys.splice(i, 0, key);
    leaf.values.splice(i, 0, value);
    return { node: leaf, split: leaf.keys.length > MAX_ENTRIES ? split(leaf, token) : null, added: true };
  }
  const ci = childIndex(node.keys, key);
  const result = insert(node.children[ci]!, key, value, token);
  const branch = writableBranch(node, token);
  branch.children[ci] = result.node;
  branch.keys[ci] = firstKey(result.node);
  if (result.split !== null) {
    branch.keys.splice(ci + 1, 0, firstKey(result.split));
    branch.children.splice(ci + 1, 0, result.split);
  }
  const overflow = branch.keys.length > MAX_ENTRIES ? split(branch, token) : null;
  return { node: branch, split: overflow, added: result.added };
}

/** Evens out (or merges) children `li` and `li + 1` of `parent` after one of them underflowed. */
function rebalance(parent: Branch, li: number, token: WriteToken): void {
  const left = writable(parent.children[li]!, token);
  const right = writable(parent.children[li + 1]!, token);
  const keys = [...left.keys, ...right.keys];
  if (left.isLeaf && right.isLeaf) {
    const values = [...left.values, ...right.values];
    const half = keys.length <= MAX_ENTRIES ? keys.length : keys.length >>> 1;
    left.keys = keys.slice(0, half);
    left.values = values.slice(0, half);
    right.keys = keys.slice(half);
    right.values = values.slice(half);
  } else if (!left.isLeaf && !right.isLeaf) {
    const children = [...left.children, ...right.children];
    const half = keys.length <= MAX_ENTRIES ? keys.length : keys.length >>> 1;
    left.keys = keys.slice(0, half);
    left.children = children.slice(0, half);
    right.keys = keys.slice(half);
    right.children = children.slice(half);
  } else {
    invariant(false, "siblings at different depths");
  }
  parent.children[li] = left;
  parent.keys[li] = firstKey(left);
  if (right.keys.length === 0) {
    parent.children.splice(li + 1, 1);
    parent.keys.splice(li + 1, 1);
  } else {
    parent.children[li + 1] = right;
    parent.keys[li + 1] = firstKey(right);
  }
}

interface RemoveResult {
  readonly node: TreeNode;
  readonly removed: boolean;
}

function remove(node: TreeNode, key: Uint8Array, token: WriteToken): RemoveResult {
  if (node.isLeaf) {
    const i = lowerBound(node.keys, key);
    if (i >= node.keys.length || compareBytes(node.keys[i]!, key) !== 0) return { node, removed: false };
    const leaf = writableLeaf(node, token);
    leaf.keys.splice(i, 1);
    leaf.values.splice(i, 1);
    return { node: leaf, removed: true };
  }
  const ci = childIndex(node.keys, key);
  const result = remove(node.children[ci]!, key, token);
  if (!result.removed) return { node, removed: false };
  const branch = writableBranch(node, token);
  branch.children[ci] = result.node;
  if (result.node.keys.length > 0) branch.keys[ci] = firstKey(result.node);
  if (result.node.keys.length < MIN_ENTRIES && branch.children.length > 1) {
    rebalance(branch, ci > 0 ? ci - 1 : ci, token);
  }
  return { node: branch, removed: true };
}

/** The next leaf in scan direction after the one `path` leads to, extending `path` to it. */
function neighbourLeaf(path: { node: Branch; index: number }[], reverse: boolean): Leaf | null {
  while (path.length > 0) {
    const frame = path[path.length - 1]!;
    const index = frame.index + (reverse ? -1 : 1);
    if (index >= 0 && index < frame.node.children.length) {
      frame.index = index;
      let node = frame.node.children[index]!;
      while (!node.isLeaf) {
        const edge = reverse ? node.children.length - 1 : 0;
        path.push({ node, index: edge });
        node = node.children[edge]!;
      }
      return node;
    }
    path.pop();
  }
  return null;
}

function* scanTree(
  root: TreeNode,
  start: Uint8Array,
  end: Uint8Array | null,
  reverse: boolean,
  limit: number,
): Generator<KvPair> {
  const path: { node: Branch; index: number }[] = [];
  let node = root;
  while (!node.isLeaf) {
    const index = !reverse
      ? childIndex(node.keys, start)
      : end === null
        ? node.children.length - 1
        : lowerBound(node.keys, end) - 1;
    if (index < 0) return;
    path.push({ node, index });
    node = node.children[index]!;
  }
  let leaf: Leaf = node;
  let i = !reverse
    ? lowerBound(leaf.keys, start)
    : (end === null ? leaf.keys.length : lowerBound(leaf.keys, end)) - 1;
  let yielded = 0;
  for (;;) {
    if (reverse) {
      for (; i >= 0; i--) {
        const key = leaf.keys[i]!;
        if (compareBytes(key, start) < 0) return;
        yield { key, value: leaf.values[i]! };
        if (++yielded >= limit) return;
      }
    } else {
      for (; i < leaf.keys.length; i++) {
        const key = leaf.keys[i]!;
        if (end !== null && compareBytes(key, end) >= 0) return;
        yield { key, value: leaf.values[i]! };
        if (++yielded >= limit) return;
      }
    }
    const next = neighbourLeaf(path, reverse);
    if (next === null) return;
    leaf = next;
    i = reverse ? leaf.keys.length - 1 : 0;
  }
}

function lookup(root: TreeNode, key: Uint8Array): Uint8Array | undefined {
  let node = root;
  while (!node.isLeaf) node = node.children[childIndex(node.keys, key)]!;
  const i = lowerBound(node.keys, key);
  return i < node.keys.length && compareBytes(node.keys[i]!, key) === 0 ? node.values[i] : undefined;
}

class TreeView implements ReadView {
  private released = false;

  constructor(private readonly tree: Tree) {}

  get(key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    return lookup(this.tree.root, key);
  }

  scan(start: Uint8Array, end: Uint8Array | null, options: ScanOptions = {}): Iterable<KvPair> {
    this.checkOpen();
    return scanTree(this.tree.root, start, end, options.reverse ?? false, scanLimit(options));
  }

  release(): void {
    this.released = true;
  }

  private checkOpen(): void {
    if (this.released) throw new Error("read view used after release");
  }
}

export class MemoryOrderedKv implements OrderedKv {
  private tree: Tree = { root: { isLeaf: true, owner: null, keys: [], values: [] }, size: 0 };

  /** Number of keys stored. */
  get size(): number {
    return this.tree.size;
  }

  view(): ReadView {
    return new TreeView(this.tree);
  }

  write(batch: WriteBatch): void {
    const token: WriteToken = {};
    let { root, size } = this.tree;
    for (const op of batch.sortedOps()) {
      if (op.value === null) {
        const result = remove(root, op.key, token);
        root = result.node;
        if (result.removed) size -= 1;
        while (!root.isLeaf && root.children.length === 1) root = root.children[0]!;
      } else {
        const result = insert(root, op.key, op.value, token);
        root = result.node;
        if (result.added) size += 1;
        if (result.split !== null) {
          root = {
            isLeaf: false,
            owner: token,
            keys: [firstKey(root), firstKey(result.split)],
            children: [root, result.split],
          };
        }
      }
    }
    this.tree = { root, size };
  }
}
