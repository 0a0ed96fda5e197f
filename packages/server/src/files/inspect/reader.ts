import type { FileHandle } from "node:fs/promises";
import { BLOCK_BYTES } from "./limits.js";
import { checkAborted, corrupt } from "./rejection.js";

/** Random access to the file with a small read-ahead window; every read is bounds-checked. */
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
    const inWindow = offset >= this.windowStart && offset + length <= this.windowStart + this.window.length;
    if (!inWindow) {
      const want = Math.min(Math.max(length, 64 * 1024), this.size - offset);
      this.window = await this.readAt(offset, want);
      this.windowStart = offset;
    }
    const at = offset - this.windowStart;
    return this.window.subarray(at, at + length);
  }

  /** Streams [start, end) in blocks. The yielded buffer is reused: consume it before the next one. */
  async *blocks(start: number, end: number): AsyncGenerator<{ offset: number; data: Buffer }> {
    const buf = Buffer.alloc(Math.min(BLOCK_BYTES, Math.max(0, end - start)));
    for (let offset = start; offset < end; ) {
      checkAborted(this.signal);
      const length = Math.min(buf.length, end - offset);
      await this.fill(buf, length, offset);
      yield { offset, data: buf.subarray(0, length) };
      offset += length;
    }
  }

  private async readAt(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.alloc(length);
    await this.fill(buf, length, offset);
    return buf;
  }

  private async fill(buf: Buffer, length: number, position: number): Promise<void> {
    checkAborted(this.signal);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, position + done);
      // The file shrank under us (it should not: it is our own stored copy).
      if (bytesRead === 0) throw corrupt("unexpected end of file");
      done += bytesRead;
    }
  }
}
