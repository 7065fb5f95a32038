/**
 * Parsing of the URL-valued flags `concord start` shares with etcd (`--listen-client-urls`,
 * `--initial-cluster`, ...): comma-separated `http://host:port` URLs with an explicit port and
 * nothing else (no credentials, path, query or fragment), and the host:port a listener binds.
 */
import { isIP } from "node:net";
import { UsageError } from "./errors.js";

/** A host and port, as the transport and the client server take them. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** One validated URL: its canonical text and where it points. */
export interface ParsedUrl extends HostPort {
  /** `http://host:port`, the form printed and stored. */
  readonly url: string;
}

export interface UrlRules {
  /** Port 0 (let the system pick) is fine for a listener, never for an address others dial. */
  readonly allowPortZero: boolean;
}

/** `http://[::1]:80` has `hostname` "[::1]" and, being the default port, an empty `port`. */
function explicitPort(url: URL, text: string): string {
  if (url.port !== "") return url.port;
  return /:80\/?$/.test(text) ? "80" : "";
}

/** Validates one URL given to `flag`. */
export function parseUrl(flag: string, text: string, rules: UrlRules): ParsedUrl {
  const trimmed = text.trim();
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    throw new UsageError(`${flag}: "${text}" is not a URL (expected http://host:port)`);
  }
  if (url.protocol === "https:") {
    throw new UsageError(`${flag}: "${text}": TLS is not supported yet; use an http:// URL`);
  }
  if (url.protocol !== "http:") {
    throw new UsageError(`${flag}: "${text}" must start with http://`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new UsageError(`${flag}: "${text}" must not carry credentials`);
  }
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    throw new UsageError(`${flag}: "${text}" must be just http://host:port, without a path or query`);
  }
  if (url.hostname === "") throw new UsageError(`${flag}: "${text}" has no host`);
  const portText = explicitPort(url, trimmed);
  if (portText === "") throw new UsageError(`${flag}: "${text}" has no port (expected http://host:port)`);
  const port = Number(portText);
  if (port === 0 && !rules.allowPortZero) {
    throw new UsageError(`${flag}: "${text}" needs a real port, not 0`);
  }
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return { url: `http://${url.hostname}:${port}`, host, port };
}

/** Validates a comma-separated list of URLs; at least one. */
export function parseUrlList(flag: string, text: string, rules: UrlRules): ParsedUrl[] {
  const parts = text.split(",").filter((part) => part.trim() !== "");
  if (parts.length === 0) throw new UsageError(`${flag}: expected at least one URL`);
  return parts.map((part) => parseUrl(flag, part, rules));
}

/**
 * Where a listener binds for a listen URL. Like etcd, a listen URL must name an IP address;
 * `localhost` is taken to mean 127.0.0.1 so the default never lands on an IPv6 loopback or a
 * resolver's surprise.
 */
export function bindAddress(flag: string, parsed: ParsedUrl): HostPort {
  if (parsed.host === "localhost") return { host: "127.0.0.1", port: parsed.port };
  if (isIP(parsed.host) === 0) {
    throw new UsageError(
      `${flag}: "${parsed.url}" must name an IP address to bind (or localhost), not a host name`,
    );
  }
  return { host: parsed.host, port: parsed.port };
}

/** Two peer URLs name the same place, taking localhost as 127.0.0.1. */
export function sameEndpoint(a: HostPort, b: HostPort): boolean {
  const canonical = (host: string) => (host === "localhost" ? "127.0.0.1" : host);
  return canonical(a.host) === canonical(b.host) && a.port === b.port;
}

/** `http://host:port` for a bound address (IPv6 hosts in brackets). */
export function formatHttpUrl(address: HostPort): string {
  const host = isIP(address.host) === 6 ? `[${address.host}]` : address.host;
  return `http://${host}:${address.port}`;
}
