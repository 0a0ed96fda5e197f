/** Builds the configured providers (PROVIDERS, in order) with their settings. */
import { join } from "node:path";
import type { Config } from "../config.js";
import type { Storage } from "../storage/storage.js";
import type { Clock } from "../util/clock.js";
import { FalProvider } from "./fal/fal-provider.js";
import { KlingProvider } from "./kling/kling-provider.js";
import type { Provider } from "./provider.js";
import { SimulatedProvider } from "./simulated/simulated-provider.js";

export function buildProviders(
  config: Config,
  deps: { clock: Clock; ffmpegPath: string; klingCallbackUrl: (taskId: string) => string; storage?: Storage },
): Map<string, Provider> {
  const providers = new Map<string, Provider>();
  const now = () => deps.clock.now().getTime();
  for (const name of config.providers) {
    if (name === "simulated") {
      providers.set(
        name,
        new SimulatedProvider({
          workDir: join(config.dataDir, "simulator"),
          ffmpegPath: deps.ffmpegPath,
          sizes: config.simulator.sizes,
          fps: config.simulator.fps,
          renderConcurrency: config.simulator.renderConcurrency,
          render: config.simulator.render,
          now,
          ...(deps.storage ? { shared: deps.storage } : {}),
        }),
      );
    } else if (name === "kling") {
      providers.set(
        name,
        new KlingProvider({
          accessKey: config.kling.accessKey ?? "",
          secretKey: config.kling.secretKey ?? "",
          baseUrl: config.kling.baseUrl,
          mode: config.kling.mode,
          sendImagesAs: config.kling.sendImagesAs,
          callbackUrl: deps.klingCallbackUrl,
          requestTimeoutMs: config.providerRequestTimeoutMs,
          now,
        }),
      );
    } else if (name === "fal") {
      providers.set(
        name,
        new FalProvider({
          key: config.fal.key ?? "",
          queueUrl: config.fal.queueUrl,
          requestTimeoutMs: config.providerRequestTimeoutMs,
          now,
        }),
      );
    } else {
      throw new Error(`provider ${name} is not built into this version yet`);
    }
  }
  return providers;
}

/** Concurrency caps per provider name (the simulator has none). */
export function providerCaps(config: Config): Record<string, number | undefined> {
  return { kling: config.kling.maxConcurrency, fal: config.fal.maxConcurrency };
}
