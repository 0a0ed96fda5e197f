import type { FileHandle } from "node:fs/promises";
import { BLOCK_BYTES } from "./limits.js";
import { checkAborted, corrupt } from "./rejection.js";

/**
 * Bounds-checked access to the file through one read-ahead window of BLOCK_BYTES. Parsers walk
 * files forwards in small steps (chunk headers, marker segments), so nearly every request is
 * served from memory: the number of reads depends on the file's size, not on its structure.
 *
 * A refill allocates a new window rather than overwriting the old one, so a buffer returned
 * earlier stays valid for as long as the caller holds it.
 */
export class Reader {
  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /**
   * Exactly `length` bytes at `offset`. A range past the end of the file is a truncated file:
   * `what` completes "The file is truncated or corrupt (…)".
   */
  async bytes(offset: number, length: number, what: string): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.size) throw corrupt(what || "unexpected end of file");
    if (!this.covers(offset, length)) await this.load(offset, length);
    const at = offset - this.windowStart;
    return this.window.subarray(at, at + length);
  }

  /** The bytes at `offset` if they are already in memory (no read, no await), else undefined. */
  peek(offset: number, length: number): Buffer | undefined {
    if (offset < 0 || length < 0 || !this.covers(offset, length)) return undefined;
    const at = offset - this.windowStart;
    return this.window.subarray(at, at + length);
  }

  /** Yields [start, end) in pieces that are views of the window (at most BLOCK_BYTES each). */
  async *blocks(start: number, end: number): AsyncGenerator<{ offset: number; data: Buffer }> {
    for (let offset = start; offset < end; ) {
      if (!this.covers(offset, 1)) await this.load(offset, 1);
      const stop = Math.min(end, this.windowStart + this.window.length);
      const at = offset - this.windowStart;
      yield { offset, data: this.window.subarray(at, at + (stop - offset)) };
      offset = stop;
    }
  }

  /** Offset of the first byte at or after `from` that differs from `byte` (the file size if none). */
  async skipRun(from: number, byte: number): Promise<number> {
    // The usual case (no run at all) without setting up a block walk.
    const next = this.peek(from, 1);
    if (next && next[0] !== byte) return from;
    for await (const { offset, data } of this.blocks(from, this.size)) {
      for (let i = 0; i < data.length; i++) if (data[i] !== byte) return offset + i;
    }
    return this.size;
  }

  private covers(offset: number, length: number): boolean {
    return offset >= this.windowStart && offset + length <= this.windowStart + this.window.length;
  }

  private async load(offset: number, length: number): Promise<void> {
    checkAborted(this.signal);
    const want = Math.min(Math.max(length, BLOCK_BYTES), this.size - offset);
    const buf = Buffer.allocUnsafe(want);
    let done = 0;
    while (done < want) {
      const { bytesRead } = await this.fh.read(buf, done, want - done, offset + done);
      // The file shrank under us (it should not: it is our own stored copy).
      if (bytesRead === 0) throw corrupt("unexpected end of file");
      done += bytesRead;
    }
    this.window = buf;
    this.windowStart = offset;
  }
}
