/** The version `concord version` and `concord --version` print: the package's own. */
import { readFileSync } from "node:fs";

export function concordVersion(): string {
  const manifest: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  if (typeof manifest !== "object" || manifest === null || !("version" in manifest)) {
    throw new Error("package.json has no version");
  }
  const { version } = manifest;
  if (typeof version !== "string") throw new Error("package.json's version is not a string");
  return version;
}
