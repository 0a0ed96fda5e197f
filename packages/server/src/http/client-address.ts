/**
 * The client's address, for the per-address rate limits (keyless routes, failed
 * authentication). By default it is the socket's peer. Behind a load balancer every request
 * comes from the balancer, so with TRUSTED_PROXIES the X-Forwarded-For chain is read from the
 * right, skipping trusted hops: the first address not in the list is the client. A chain that
 * only has trusted hops yields its left-most entry. Requests from untrusted peers never have
 * their header read (it could name anyone).
 */
import { BlockList, isIP } from "node:net";

/** Parses "10.0.0.0/8, 127.0.0.1, ::1" into a BlockList; throws on a bad entry. */
export function parseTrustedProxies(list: string[]): BlockList {
  const blocks = new BlockList();
  for (const entry of list) {
    const [address = "", prefix] = entry.split("/");
    const family = isIP(address);
    if (family === 0) throw new Error(`not an IP address or CIDR range: ${entry}`);
    const type = family === 4 ? "ipv4" : "ipv6";
    if (prefix === undefined) {
      blocks.addAddress(address, type);
      continue;
    }
    const bits = Number(prefix);
    if (!/^\d+$/.test(prefix) || bits > (family === 4 ? 32 : 128)) throw new Error(`bad prefix length: ${entry}`);
    blocks.addSubnet(address, bits, type);
  }
  return blocks;
}

export function resolveClientAddress(
  peer: string,
  forwardedFor: string | undefined,
  trusted: BlockList | undefined,
): string {
  if (!trusted || !forwardedFor || !isTrusted(trusted, peer)) return peer;
  const hops = forwardedFor
    .split(",")
    .map((h) => normalize(h.trim()))
    .filter((h) => isIP(h) !== 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (!isTrusted(trusted, hop)) return hop;
  }
  return hops[0] ?? peer;
}

function isTrusted(trusted: BlockList, address: string): boolean {
  const plain = normalize(address);
  const family = isIP(plain);
  if (family === 0) return false;
  return trusted.check(plain, family === 4 ? "ipv4" : "ipv6");
}

/** "::ffff:10.0.0.1" (an IPv4 peer on a dual-stack socket) → "10.0.0.1"; "[::1]:443" → "::1". */
function normalize(address: string): string {
  let a = address;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(a);
  if (bracketed) a = bracketed[1] as string;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(a)) a = a.slice(0, a.lastIndexOf(":"));
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return mapped ? (mapped[1] as string) : a;
}
