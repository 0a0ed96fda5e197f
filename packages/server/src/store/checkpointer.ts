/**
 * WAL checkpoints off the request path.
 *
 * With SQLite's default auto-checkpoint, the COMMIT that pushes the WAL past 1,000 pages copies
 * the WAL into the database file before it returns, inside whichever request made it, and
 * better-sqlite3 being synchronous, the whole event loop waits. Instead the serving connection
 * turns auto-checkpoint off (`wal_autocheckpoint = 0`) and this module checkpoints from a worker
 * thread with a connection of its own:
 *
 * - every `intervalMs` (when something was committed since the last round), a PASSIVE
 *   checkpoint: it copies what it can without waiting for, or blocking, the serving connection's
 *   readers and writers;
 * - when the WAL still holds `restartFrames` frames or more after it, a RESTART checkpoint, which
 *   bounds the WAL file. SQLite rewinds the WAL (the next commit writes from its start) only
 *   after a checkpoint has caught up with every commit, and under a steady stream of commits a
 *   PASSIVE one never quite does. A RESTART needs a moment with no transaction open, which a
 *   busy serving connection leaves only for microseconds between two transactions: too short for
 *   SQLite's busy-retry to hit. So the thread asks for one through a CheckpointGate: the driver
 *   sees the request when it next hands out its connection (between two transactions, never
 *   inside one), lets the thread run, and hands the connection out once the RESTART is done —
 *   awaiting, not blocking the event loop. The pause lasts as long as copying the frames written
 *   since the PASSIVE pass and syncing. If the serving connection does not answer quickly (it is
 *   idle, or in a long transaction), the thread goes ahead alone, its waits bounded by its own
 *   short busy timeout; a RESTART that cannot get through does what a PASSIVE one does and is
 *   tried again next round.
 *
 * If the thread fails (it cannot load the driver or open the file, or dies), `onFailure` is
 * called once so the owner turns SQLite's auto-checkpoint back on: the WAL stays bounded either way.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

export interface CheckpointerOptions {
  /** The database file (already in WAL mode). */
  file: string;
  /** The serving connection's `synchronous` level: checkpoints sync (or not) the same way. */
  synchronous: "NORMAL" | "FULL";
  /** Between two checkpoints. */
  intervalMs?: number;
  /** WAL frames (pages) past which a RESTART checkpoint rewinds the WAL. */
  restartFrames?: number;
  /** How long a RESTART checkpoint may wait for the writer and the readers. */
  busyTimeoutMs?: number;
  /** Called once if the thread fails; the checkpointer is stopped by then. */
  onFailure?: (error: Error) => void;
}

/**
 * Often enough that a PASSIVE round has little to copy even under a stream of creates (tens of
 * thousands of frames a second), so the WAL stays near `restartFrames` and a RESTART's pause
 * covers only a short tail. A round with nothing to copy costs microseconds.
 */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 100;
/** 8,192 frames of 4 KiB pages: a 32 MiB WAL, eight times SQLite's auto-checkpoint point. */
export const DEFAULT_RESTART_FRAMES = 8192;
/** Short: while a RESTART waits, it holds the write lock, and every writer waits behind it. */
const DEFAULT_BUSY_TIMEOUT_MS = 100;
/** A thread asked to stop that has not exited by then is terminated. */
const STOP_GRACE_MS = 5000;
/** How long the thread waits for the serving connection to pause before going ahead alone. */
const PAUSE_ANSWER_MS = 50;
/** The longest the serving connection stays paused, should the thread never say it is done. */
const MAX_PAUSE_MS = 2000;

// CheckpointGate states, in one Int32 shared by the two threads.
const IDLE = 0;
/** The thread wants the serving connection to pause. */
const REQUESTED = 1;
/** The serving connection is paused until the thread sets IDLE again. */
const PAUSED = 2;
/** The thread is gone: nobody pauses any more. */
const CLOSED = 3;

type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
  timeoutMs: number,
) => { async: false; value: string } | { async: true; value: Promise<string> };
// ES2024 (Node ≥ 16); the project's TypeScript lib stops at ES2023.
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * The serving connection's side of the pause handshake (see the module comment). Its driver
 * checks `pauseRequested()` each time it hands out the connection: one atomic read.
 */
export class CheckpointGate {
  readonly state = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));

  pauseRequested(): boolean {
    return Atomics.load(this.state, 0) === REQUESTED;
  }

  /** Called while holding the connection: resolves once the thread's checkpoint is done. */
  async pause(): Promise<void> {
    if (Atomics.compareExchange(this.state, 0, REQUESTED, PAUSED) !== REQUESTED) return;
    Atomics.notify(this.state, 0);
    const wait = waitAsync(this.state, 0, PAUSED, MAX_PAUSE_MS);
    if (wait.async) await wait.value;
    // Past MAX_PAUSE_MS the connection is taken back; writes then wait on SQLite's lock instead.
    Atomics.compareExchange(this.state, 0, PAUSED, IDLE);
  }

  /** No more pauses (the thread stopped or failed); a paused connection resumes now. */
  close(): void {
    Atomics.store(this.state, 0, CLOSED);
    Atomics.notify(this.state, 0);
  }
}

export interface CheckpointerStats {
  /** Checkpoint rounds run after new commits (PASSIVE, followed or not by a RESTART). */
  rounds: number;
  /** RESTART checkpoints that got through (the next commit rewinds the WAL). */
  restarts: number;
  /** RESTART checkpoints that could not get the locks in time and did what a PASSIVE one does. */
  restartsBusy: number;
  /** Frames in the WAL after the last round (0 once it has been rewound and not written since). */
  walFrames: number;
  /** Checkpoint attempts that failed (the thread keeps going), and the last one's message. */
  errors: number;
  lastError: string | undefined;
  /** Set when the thread failed and auto-checkpoint took over. */
  failure: Error | undefined;
}

type ThreadMessage =
  | { type: "round"; restart: "none" | "done" | "busy"; walFrames: number }
  | { type: "error"; message: string };

/**
 * The thread's code, plain CommonJS run with `eval` so it needs no loader (TypeScript sources run
 * under tsx in development and tests, compiled JavaScript in production). It loads the same
 * better-sqlite3 the main thread uses, by absolute path.
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driverPath);
const { file, synchronous, intervalMs, restartFrames, busyTimeoutMs, gate, pauseAnswerMs } = workerData;
const [IDLE, REQUESTED, PAUSED] = [${IDLE}, ${REQUESTED}, ${PAUSED}];
const db = new Database(file, { fileMustExist: true });
db.pragma("busy_timeout = " + busyTimeoutMs);
db.pragma("synchronous = " + synchronous);
let timer;
// data_version changes when another connection commits: rounds with nothing new are skipped.
let seenVersion;
function restartWithServingConnectionPaused() {
  Atomics.store(gate, 0, REQUESTED);
  Atomics.wait(gate, 0, REQUESTED, pauseAnswerMs);
  // No answer in time: withdraw the request and go ahead alone.
  const paused = Atomics.compareExchange(gate, 0, REQUESTED, IDLE) === PAUSED;
  try {
    return db.pragma("wal_checkpoint(RESTART)")[0];
  } finally {
    if (paused) {
      Atomics.compareExchange(gate, 0, PAUSED, IDLE);
      Atomics.notify(gate, 0);
    }
  }
}
function round() {
  try {
    const version = db.pragma("data_version", { simple: true });
    if (version === seenVersion) return;
    seenVersion = version;
    let result = db.pragma("wal_checkpoint(PASSIVE)")[0];
    let restart = "none";
    if (result.log >= restartFrames) {
      result = restartWithServingConnectionPaused();
      restart = result.busy === 0 ? "done" : "busy";
    }
    // After a RESTART that got through, the next commit rewinds the WAL: nothing is left in it.
    const walFrames = restart === "done" ? 0 : result.log;
    parentPort.postMessage({ type: "round", restart, walFrames });
  } catch (error) {
    parentPort.postMessage({ type: "error", message: String((error && error.message) || error) });
  }
}
function loop() {
  round();
  timer = setTimeout(loop, intervalMs);
}
timer = setTimeout(loop, intervalMs);
parentPort.on("message", (message) => {
  if (message !== "stop") return;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
`;

export class WalCheckpointer {
  private readonly worker: Worker;
  private readonly counters: CheckpointerStats = {
    rounds: 0,
    restarts: 0,
    restartsBusy: 0,
    walFrames: 0,
    errors: 0,
    lastError: undefined,
    failure: undefined,
  };
  private stopping: Promise<void> | undefined;
  private exited = false;
  /** Hand it to the serving connection's driver (SqliteStoreDialect). */
  readonly gate = new CheckpointGate();

  constructor(private readonly options: CheckpointerOptions) {
    const driverPath = createRequire(import.meta.url).resolve("better-sqlite3");
    this.worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: {
        driverPath,
        gate: this.gate.state,
        pauseAnswerMs: PAUSE_ANSWER_MS,
        file: options.file,
        synchronous: options.synchronous,
        intervalMs: options.intervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
        restartFrames: options.restartFrames ?? DEFAULT_RESTART_FRAMES,
        busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
      },
      // The thread needs little: a connection and a timer.
      resourceLimits: { maxOldGenerationSizeMb: 32 },
    });
    // A store someone forgot to close must not keep the process alive.
    this.worker.unref();
    this.worker.on("message", (message: ThreadMessage) => this.onMessage(message));
    this.worker.on("error", (error) => this.fail(error));
    this.worker.on("exit", (code) => {
      this.exited = true;
      if (!this.stopping) this.fail(new Error(`the WAL checkpointer thread exited (code ${code})`));
    });
  }

  /** False once the thread has exited (stopped or failed). */
  get running(): boolean {
    return !this.exited;
  }

  stats(): CheckpointerStats {
    return { ...this.counters };
  }

  /** Stops the thread (idempotent); the owner's close() then checkpoints the rest itself. */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  private async shutDown(): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
    this.worker.postMessage("stop");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), STOP_GRACE_MS);
    });
    if ((await Promise.race([exited, timedOut])) === "timeout") await this.worker.terminate();
    clearTimeout(timer);
    this.gate.close();
  }

  private onMessage(message: ThreadMessage): void {
    if (message.type === "error") {
      this.counters.errors++;
      this.counters.lastError = message.message;
      return;
    }
    this.counters.rounds++;
    if (message.restart === "done") this.counters.restarts++;
    if (message.restart === "busy") this.counters.restartsBusy++;
    this.counters.walFrames = message.walFrames;
  }

  private fail(error: Error): void {
    if (this.counters.failure || this.stopping) return;
    this.counters.failure = error;
    this.gate.close();
    this.stopping = this.worker.terminate().then(() => undefined);
    this.options.onFailure?.(error);
  }
}
