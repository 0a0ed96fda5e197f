import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Sha256 } from "./sha256.js";

const reference = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

describe("Sha256", () => {
  it("matches the known digests of the empty string and 'abc'", () => {
    expect(new Sha256().hex()).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const abc = new Sha256();
    abc.update(new TextEncoder().encode("abc"));
    expect(abc.hex()).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("matches node:crypto for every length around the block and padding edges, in any chunking", () => {
    for (const length of [1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 65_537]) {
      const data = randomBytes(length);
      const whole = new Sha256();
      whole.update(data);
      expect(whole.hex(), `length ${length}`).toBe(reference(data));
      // Uneven chunks, including empty ones.
      const chunked = new Sha256();
      for (let at = 0, step = 0; at < length; step++) {
        const size = [0, 1, 7, 63, 64, 100][step % 6] as number;
        chunked.update(data.subarray(at, at + size));
        at += size;
      }
      expect(chunked.hex(), `length ${length}, chunked`).toBe(reference(data));
    }
  });
});
