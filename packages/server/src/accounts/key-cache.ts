/**
 * A short-lived, bounded in-process cache of API-key lookups (issue 13: the lookup was a third of
 * a keyed GET). What bounds staleness:
 *
 * - An entry is trusted for at most `ttlMs` (KEY_CACHE_TTL_MS) after it was read from the
 *   database; then the next request reads the row again. A key revoked by another process (the
 *   CLI, another API process) is therefore refused within that time everywhere.
 * - A revocation through this process drops the key's entry at once; on PostgreSQL every process
 *   also hears it through NOTIFY (see key-revocations.ts) and drops it at once. On SQLite any
 *   commit by another connection (the CLI revoking a key) empties the cache before the next
 *   lookup (syncGeneration, fed with SQLite's data_version).
 * - Expiry (`expires_at`) is checked against the clock on every request, cached or not.
 *
 * Only keys that exist are cached: unknown secrets always reach the database (and the failed-auth
 * throttle), so guessing cannot fill the cache. The cache is keyed by the secret's SHA-256, never
 * the secret.
 */
import type { Scope } from "./keys.js";

export interface CachedKey {
  keyId: string;
  accountId: string;
  scopes: ReadonlySet<Scope>;
  expiresAt: string | null;
  revokedAt: string | null;
}

interface Entry {
  key: CachedKey;
  /** Epoch ms after which the entry must be read again. */
  freshUntil: number;
}

export class KeyCache {
  /** Insertion-ordered: the first entry is the least recently stored one. */
  private readonly byHash = new Map<string, Entry>();
  private readonly hashByKeyId = new Map<string, string>();
  private generation: number | undefined;

  constructor(private readonly opts: { ttlMs: number; maxEntries: number; now: () => number }) {}

  get enabled(): boolean {
    return this.opts.ttlMs > 0 && this.opts.maxEntries > 0;
  }

  get size(): number {
    return this.byHash.size;
  }

  get(hash: string): CachedKey | undefined {
    const entry = this.byHash.get(hash);
    if (!entry) return undefined;
    if (entry.freshUntil <= this.opts.now()) {
      this.drop(hash, entry.key.keyId);
      return undefined;
    }
    return entry.key;
  }

  set(hash: string, key: CachedKey): void {
    if (!this.enabled) return;
    const previous = this.byHash.get(hash);
    if (previous) this.drop(hash, previous.key.keyId);
    while (this.byHash.size >= this.opts.maxEntries) {
      const oldest = this.byHash.entries().next().value;
      if (!oldest) break;
      this.drop(oldest[0], oldest[1].key.keyId);
    }
    this.byHash.set(hash, { key, freshUntil: this.opts.now() + this.opts.ttlMs });
    this.hashByKeyId.set(key.keyId, hash);
  }

  /** Forgets a key (revoked, changed): its next use reads the database. */
  invalidate(keyId: string): void {
    const hash = this.hashByKeyId.get(keyId);
    if (hash !== undefined) this.drop(hash, keyId);
  }

  /**
   * Forgets everything when the database says another connection has written since the last
   * call (SQLite's `data_version`: a revocation by the CLI or any other process). Cheap: the
   * counter only moves on other connections' commits, which on SQLite are rare.
   */
  syncGeneration(generation: number): void {
    if (generation !== this.generation) {
      this.clear();
      this.generation = generation;
    }
  }

  /** Forgets everything (e.g. when revocation notices may have been missed). */
  clear(): void {
    this.byHash.clear();
    this.hashByKeyId.clear();
  }

  private drop(hash: string, keyId: string): void {
    this.byHash.delete(hash);
    if (this.hashByKeyId.get(keyId) === hash) this.hashByKeyId.delete(keyId);
  }
}
