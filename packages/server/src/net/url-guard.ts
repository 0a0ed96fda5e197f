/**
 * SSRF guard for outbound requests to user-supplied URLs (api-contract §7 webhook URL rules, Files API
 * `url` uploads): a syntax-level URL check, an address classifier and a resolve-and-check helper.
 *
 * The authoritative address check happens at connect time (see safe-fetch.ts); `checkUrl` and
 * `resolveAndCheck` are the early checks used when a URL is accepted (webhook creation, upload request).
 * Reasons returned here never echo the URL (it may carry secrets) nor resolved addresses (they would let a
 * caller map internal DNS names).
 */
import dns, { type LookupAddress, type LookupAllOptions } from "node:dns";
import { isIP, isIPv4, isIPv6 } from "node:net";

export interface GuardOptions {
  /** Allow `http:` URLs besides `https:`. */
  allowHttp: boolean;
  /** Allow loopback, private, link-local and reserved targets (and `localhost`). */
  allowPrivateAddresses: boolean;
}

/** Production policy: https only, public addresses only. */
export const STRICT: GuardOptions = Object.freeze({ allowHttp: false, allowPrivateAddresses: false });
/** Development and tests only (`WEBHOOK_ALLOW_INSECURE_URLS=true`): http and private targets allowed. */
export const INSECURE: GuardOptions = Object.freeze({ allowHttp: true, allowPrivateAddresses: true });

/** Same shape as `dns.lookup(hostname, { all: true }, callback)`; `dns.lookup` itself fits. */
export type LookupFn = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

export const defaultLookup: LookupFn = (hostname, options, callback) => dns.lookup(hostname, options, callback);

/** Longer URLs are refused (presigned object-store URLs stay well below this). */
export const MAX_URL_LENGTH = 8192;

export const REASON_FORBIDDEN_ADDRESS =
  "The host is a loopback, private, link-local, multicast or reserved address, which is not allowed.";
export const REASON_FORBIDDEN_RESOLUTION =
  "The host name resolves to a loopback, private, link-local, multicast or reserved address, which is not allowed.";
export const REASON_UNRESOLVABLE = "The host name could not be resolved.";

type CheckResult = { ok: true; url: URL } | { ok: false; reason: string };

/**
 * Syntax-level check of a user-supplied URL: printable ASCII only, absolute, scheme https (or http when
 * allowed), no userinfo, no fragment, a host, not `localhost`/`*.localhost` and not a forbidden literal IP
 * (both unless private addresses are allowed). Any port. WHATWG parsing normalizes decimal, octal and hex
 * IPv4 forms (`http://2130706433/`, `http://0177.0.0.1/`) to dotted quads first, so they are judged as such.
 * Host names are not resolved here; see `resolveAndCheck` and the connect-time check in safe-fetch.ts.
 */
export function checkUrl(raw: string, opts: GuardOptions): CheckResult {
  if (typeof raw !== "string" || raw.length === 0) return refuse("The URL is empty.");
  if (raw.length > MAX_URL_LENGTH) return refuse(`The URL is longer than ${MAX_URL_LENGTH} characters.`);
  // Printable ASCII only: no spaces or control characters (WHATWG would silently strip tabs and newlines),
  // and no Unicode look-alikes (fullwidth digits, circled letters) that normalize into other hosts.
  if (!/^[\x21-\x7e]+$/.test(raw)) {
    return refuse(
      "The URL must contain only printable ASCII characters: percent-encode other characters and use the punycode (xn--) form of internationalized host names.",
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse("The URL is not a valid absolute URL.");
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && opts.allowHttp)) {
    return refuse(opts.allowHttp ? "The URL must use https or http." : "The URL must use https.");
  }
  // `https://@host/` parses with an empty username; refuse any `@` in the authority as well.
  if (url.username !== "" || url.password !== "" || /^[a-z][a-z0-9+.-]*:[/\\]*[^/\\?#]*@/i.test(raw)) {
    return refuse("The URL must not contain credentials (user:password@).");
  }
  if (raw.includes("#")) return refuse("The URL must not contain a fragment (#...).");
  if (url.hostname === "") return refuse("The URL must have a host.");
  if (!opts.allowPrivateAddresses) {
    const host = bareHost(url.hostname);
    if (isIP(host) !== 0) {
      if (isForbiddenAddress(host)) return refuse(REASON_FORBIDDEN_ADDRESS);
    } else {
      const name = host.toLowerCase().replace(/\.+$/, "");
      if (name === "localhost" || name.endsWith(".localhost")) return refuse("The host must not be localhost.");
    }
  }
  return { ok: true, url };
}

/**
 * True when `ip` is not a public unicast address: loopback, unspecified, private, link-local, CGNAT,
 * multicast, broadcast, benchmarking, documentation and other special-purpose ranges (IANA registries).
 * IPv6 forms that embed an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, SIIT
 * `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the embedded address; other
 * IPv6 addresses must be global unicast (2000::/3) outside Teredo/IETF (2001::/23), documentation
 * (2001:db8::/32, 3fff::/20). Anything that is not a canonical IP literal (octal/hex forms, zone ids,
 * garbage) is reported forbidden. Accepts `[v6]` with brackets.
 */
export function isForbiddenAddress(ip: string): boolean {
  if (typeof ip !== "string") return true;
  const addr = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  if (isIPv4(addr)) return isForbiddenV4(parseV4(addr));
  if (addr.includes("%") || !isIPv6(addr)) return true;
  return isForbiddenV6(parseV6(addr));
}

/**
 * Resolves `host` (a name, or a literal IP with or without brackets) and fails if ANY resolved address is
 * forbidden, unless private addresses are allowed. Only a pre-check: the name can resolve differently at
 * connect time, which is why safe-fetch checks again there.
 */
export async function resolveAndCheck(
  host: string,
  opts: GuardOptions,
  lookup: LookupFn = defaultLookup,
): Promise<{ ok: true; addresses: string[] } | { ok: false; reason: string }> {
  const bare = bareHost(host);
  if (bare === "") return refuse("The URL must have a host.");
  if (isIP(bare) !== 0) {
    if (!opts.allowPrivateAddresses && isForbiddenAddress(bare)) return refuse(REASON_FORBIDDEN_ADDRESS);
    return { ok: true, addresses: [bare] };
  }
  let addresses: LookupAddress[];
  try {
    addresses = await new Promise<LookupAddress[]>((resolve, reject) => {
      lookup(bare, { all: true }, (err, result) => (err ? reject(err) : resolve(result)));
    });
  } catch {
    return refuse(REASON_UNRESOLVABLE);
  }
  if (!Array.isArray(addresses) || addresses.length === 0) return refuse(REASON_UNRESOLVABLE);
  const list = addresses.map((a) => a.address);
  if (!opts.allowPrivateAddresses && list.some((a) => isForbiddenAddress(a))) {
    return refuse(REASON_FORBIDDEN_RESOLUTION);
  }
  return { ok: true, addresses: list };
}

function refuse(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

/** `[::1]` → `::1`; names and IPv4 unchanged. */
function bareHost(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

// ---------------------------------------------------------------------------------------------------------
// Address ranges

/** [network, prefix length] pairs, IPv4 as a 32-bit unsigned number. */
const FORBIDDEN_V4: readonly (readonly [string, number])[] = [
  ["0.0.0.0", 8], // "this network"; 0.0.0.0 reaches the local host on Linux
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // CGNAT shared address space
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local (cloud metadata services)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // TEST-NET-1
  ["192.88.99.0", 24], // 6to4 relay anycast (deprecated)
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // TEST-NET-2
  ["203.0.113.0", 24], // TEST-NET-3
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, includes 255.255.255.255 broadcast
];

const FORBIDDEN_V4_RANGES = FORBIDDEN_V4.map(([net, bits]) => {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { net: (parseV4(net) & mask) >>> 0, mask };
});

function parseV4(addr: string): number {
  const parts = addr.split(".").map(Number);
  return ((parts[0] ?? 0) * 0x1000000 + (parts[1] ?? 0) * 0x10000 + (parts[2] ?? 0) * 0x100 + (parts[3] ?? 0)) >>> 0;
}

function isForbiddenV4(value: number): boolean {
  return FORBIDDEN_V4_RANGES.some(({ net, mask }) => (value & mask) >>> 0 === net);
}

/** Eight 16-bit groups. Input must already be validated by `isIPv6` (no zone id). */
function parseV6(addr: string): number[] {
  let text = addr;
  const lastColon = text.lastIndexOf(":");
  const last = text.slice(lastColon + 1);
  if (last.includes(".")) {
    // Trailing dotted quad (`::ffff:127.0.0.1`) → two hex groups.
    const v4 = parseV4(last);
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const toGroups = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const gap = text.indexOf("::");
  if (gap === -1) return toGroups(text);
  const head = toGroups(text.slice(0, gap));
  const rest = toGroups(text.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
}

function isForbiddenV6(g: number[]): boolean {
  const at = (i: number) => g[i] ?? 0;
  const embedded = (hi: number, lo: number) => isForbiddenV4(((hi << 16) >>> 0) + lo);
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  // ::/96 (unspecified, loopback, deprecated IPv4-compatible) and ::ffff:0:0/96 (IPv4-mapped).
  if (zero(0, 5) && (at(5) === 0 || at(5) === 0xffff)) return embedded(at(6), at(7));
  // ::ffff:0:0:0/96, IPv4-translated (SIIT).
  if (zero(0, 4) && at(4) === 0xffff && at(5) === 0) return embedded(at(6), at(7));
  // 64:ff9b::/96, NAT64 well-known prefix.
  if (at(0) === 0x64 && at(1) === 0xff9b && zero(2, 6)) return embedded(at(6), at(7));
  // Everything else outside 2000::/3 global unicast: ULA fc00::/7, link-local fe80::/10, site-local,
  // multicast ff00::/8, discard 100::/64, local-use NAT64 64:ff9b:1::/48, SRv6 5f00::/16, unassigned.
  if ((at(0) & 0xe000) !== 0x2000) return true;
  // 2002::/16, 6to4: the embedded IPv4 address is the tunnel endpoint.
  if (at(0) === 0x2002) return embedded(at(1), at(2));
  // 2001::/23, IETF protocol assignments (Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID).
  if (at(0) === 0x2001 && at(1) < 0x200) return true;
  // 2001:db8::/32 and 3fff::/20, documentation.
  if (at(0) === 0x2001 && at(1) === 0xdb8) return true;
  if ((at(0) & 0xfff0) === 0x3ff0) return true;
  return false;
}
