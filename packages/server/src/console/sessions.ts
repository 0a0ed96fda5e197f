/**
 * The web console's sign-in sessions (issue 17). A browser signs in once with an API key
 * (customer) or the ADMIN_TOKEN (operator) and then holds an opaque random token in an HttpOnly
 * cookie instead of the secret itself, so page scripts never keep the key.
 *
 * What ends a session, and why it is checked on every use rather than cached:
 * - its own expiry (CONSOLE_SESSION_TTL_HOURS from sign-in) and sign-out (revoked_at);
 * - customer: anything that ends the key it was made from. The session keeps that key's stored
 *   hash and resolves it through AccountService.authenticateHash, the very path (cache, NOTIFY
 *   and data_version invalidation, expiry) that API-key requests take, so a revoked key stops
 *   its sessions exactly when it stops working as a Bearer key;
 * - operator: a change of ADMIN_TOKEN (the session keeps the SHA-256 of the token it was made
 *   with and compares it in constant time), or ADMIN_TOKEN being unset.
 *
 * Only the SHA-256 of the cookie's token is stored. Expired rows are deleted by the periodic
 * maintenance (pruneExpired).
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { hashApiKey } from "../accounts/keys.js";
import type { AccountService, AuthenticatedKey } from "../accounts/service.js";
import { ApiError } from "../errors.js";
import { sameSecret } from "../http/bearer.js";
import type { Db } from "../store/db.js";
import { addMs, type Clock, iso } from "../util/clock.js";
import { randomBase62 } from "../util/ids.js";

export type SessionKind = "customer" | "operator";

/** The session as GET/POST /console/api/session show it. */
export interface SessionView {
  kind: SessionKind;
  account_id: string | null;
  key_id: string | null;
  scopes: string[];
  expires_at: string;
}

/** A live session: the view, and for a customer the key it acts as. */
export type ResolvedSession =
  | { kind: "customer"; view: SessionView; key: AuthenticatedKey }
  | { kind: "operator"; view: SessionView };

export type SignInCredentials = { apiKey: string } | { adminToken: string };

export interface ConsoleSessionDeps {
  db: Db;
  clock: Clock;
  accounts: AccountService;
  adminToken: string | undefined;
  ttlMs: number;
}

/** SHA-256 in hex; the same function API keys are stored with (accounts/keys.ts). */
const sha256Hex = hashApiKey;

function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, "hex");
  const right = Buffer.from(b, "hex");
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}

const invalid = (why: string) => new ApiError("api_key_invalid", `The console session is not valid: ${why}.`);

export class ConsoleSessions {
  constructor(private readonly deps: ConsoleSessionDeps) {}

  get ttlSeconds(): number {
    return Math.floor(this.deps.ttlMs / 1000);
  }

  /**
   * Checks the credentials and stores a new session; returns the cookie's token (shown once,
   * never stored) and the session. A wrong key or token throws a 401 ApiError (the caller
   * throttles it).
   */
  async signIn(credentials: SignInCredentials): Promise<{ token: string; view: SessionView }> {
    const now = this.deps.clock.now();
    const expiresAt = iso(addMs(now, this.deps.ttlMs));
    let row: { kind: SessionKind; account_id: string | null; key_id: string | null; credential_hash: string };
    let scopes: string[] = [];
    if ("apiKey" in credentials) {
      // Revoked or expired keys are refused here with their own codes, as on the API.
      const key = await this.deps.accounts.authenticate(credentials.apiKey);
      row = {
        kind: "customer",
        account_id: key.accountId,
        key_id: key.keyId,
        credential_hash: hashApiKey(credentials.apiKey),
      };
      scopes = [...key.scopes];
    } else {
      const expected = this.deps.adminToken;
      if (!expected || !sameSecret(credentials.adminToken, expected)) {
        throw new ApiError("api_key_invalid", "The admin token is not valid.");
      }
      row = { kind: "operator", account_id: null, key_id: null, credential_hash: sha256Hex(credentials.adminToken) };
    }
    const token = randomBytes(32).toString("base64url");
    await this.deps.db
      .insertInto("console_sessions")
      .values({
        id: `cses_${randomBase62(22)}`,
        token_hash: sha256Hex(token),
        ...row,
        created_at: iso(now),
        expires_at: expiresAt,
        revoked_at: null,
      })
      .execute();
    return {
      token,
      view: { kind: row.kind, account_id: row.account_id, key_id: row.key_id, scopes, expires_at: expiresAt },
    };
  }

  /** The live session of a cookie token, or a 401 ApiError (api_key_invalid) saying why not. */
  async resolve(token: string): Promise<ResolvedSession> {
    const hash = sha256Hex(token);
    const row = await this.deps.db
      .selectFrom("console_sessions")
      .selectAll()
      .where("token_hash", "=", hash)
      .executeTakeFirst();
    if (!row || !sameHash(row.token_hash, hash)) throw invalid("unknown session");
    if (row.revoked_at) throw invalid("signed out");
    if (row.expires_at <= iso(this.deps.clock.now())) throw invalid("expired");
    const base = { account_id: row.account_id, key_id: row.key_id, expires_at: row.expires_at };
    if (row.kind === "operator") {
      const current = this.deps.adminToken;
      if (!current || !sameHash(row.credential_hash, sha256Hex(current))) throw invalid("the admin token has changed");
      return { kind: "operator", view: { kind: "operator", ...base, scopes: [] } };
    }
    let key: AuthenticatedKey;
    try {
      key = await this.deps.accounts.authenticateHash(row.credential_hash);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) throw invalid(error.message.replace(/\.$/, ""));
      throw error;
    }
    return { kind: "customer", view: { kind: "customer", ...base, scopes: [...key.scopes] }, key };
  }

  /** Ends the session of a token (sign-out); an unknown token changes nothing. */
  async revoke(token: string): Promise<void> {
    await this.deps.db
      .updateTable("console_sessions")
      .set({ revoked_at: iso(this.deps.clock.now()) })
      .where("token_hash", "=", sha256Hex(token))
      .where("revoked_at", "is", null)
      .execute();
  }

  /** Deletes sessions past their expiry (maintenance); returns how many. */
  async pruneExpired(): Promise<number> {
    const result = await this.deps.db
      .deleteFrom("console_sessions")
      .where("expires_at", "<=", iso(this.deps.clock.now()))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
