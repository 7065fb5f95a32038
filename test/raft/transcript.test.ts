// Runs every protocol transcript in test/raft/transcripts: each "> command" line is replayed
// against a fresh Interaction and its output must match the text below it exactly.
// REWRITE=1 regenerates the expected output (review the diff before committing it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Interaction } from "./interaction.js";

const DIR = "test/raft/transcripts";

interface Block {
  comments: string[];
  command: string;
  expected: string;
}

function parse(text: string): Block[] {
  const blocks: Block[] = [];
  let comments: string[] = [];
  let current: { comments: string[]; command: string; lines: string[] } | undefined;
  const flush = (): void => {
    if (!current) return;
    while (current.lines.length > 0 && current.lines[current.lines.length - 1]!.trim() === "")
      current.lines.pop();
    blocks.push({ comments: current.comments, command: current.command, expected: current.lines.join("\n") });
    current = undefined;
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("> ")) {
      flush();
      current = { comments, command: line.slice(2), lines: [] };
      comments = [];
    } else if (line.startsWith("#")) {
      // Output never starts with "#": a comment belongs to the next command.
      flush();
      comments.push(line);
    } else if (current) {
      current.lines.push(line);
    }
  }
  flush();
  return blocks;
}

function render(blocks: readonly Block[]): string {
  return (
    blocks
      .map((b) => [...b.comments, `> ${b.command}`, ...(b.expected === "" ? [] : [b.expected])].join("\n"))
      .join("\n\n") + "\n"
  );
}

for (const file of readdirSync(DIR)
  .filter((f) => f.endsWith(".txt"))
  .sort()) {
  test(`transcript ${file}`, () => {
    const path = join(DIR, file);
    const blocks = parse(readFileSync(path, "utf8"));
    const interaction = new Interaction();
    const actual = blocks.map((b) => ({ ...b, expected: interaction.run(b.command) }));
    if (process.env.REWRITE === "1") {
      writeFileSync(path, render(actual));
      return;
    }
    blocks.forEach((b, i) =>
      assert.equal(actual[i]!.expected, b.expected, `${file}: output of "> ${b.command}"`),
    );
  });
}
