// EventWatcher follows the agent's event bus (AgentService.WatchEvents) for
// as long as it is started: when the stream breaks (the agent restarted,
// the network dropped) it reconnects with a growing back-off and resumes
// after the last sequence it saw, so subscribers see each event once and a
// `gap` when some were lost (then they re-read the state they mirror).
// Listeners get typed callbacks; nothing here polls.

import { EventEmitter } from "node:events";
import type { CaughtUp, EventGap } from "../gen/omnipanel/v1/agent";
import type { Event } from "../gen/omnipanel/v1/events";
import type { AgentConnection } from "./connection";
import { classify, type OmniPanelError } from "./errors";
import type { CallStream } from "./services";

export interface EventWatcherEvents {
  /** One event from the bus. */
  event: [Event];
  /** Events were lost (or the agent restarted): re-read mirrored state. */
  gap: [EventGap];
  /** Replay finished; live events follow. Sent after every (re)connect. */
  caughtUp: [CaughtUp];
  /** The stream broke; a retry follows after `retryInMs`. */
  disconnected: [OmniPanelError, number];
  /** A failure retrying cannot fix (the token was refused): the watcher stopped. */
  stopped: [OmniPanelError];
}

export interface EventWatcherOptions {
  /** Only these topics; empty: all. */
  topics?: string[];
  /** First retry delay (default 250 ms), doubled up to `maxBackoffMs`. */
  minBackoffMs?: number;
  /** Longest retry delay (default 5 s). */
  maxBackoffMs?: number;
}

export class EventWatcher extends EventEmitter<EventWatcherEvents> {
  /** Sequence of the last event delivered, with the run it belongs to. */
  lastSequence: bigint | undefined;
  instanceId = 0n;
  private stream: CallStream<unknown> | undefined;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly connection: AgentConnection,
    private readonly options: EventWatcherOptions = {},
  ) {
    super();
  }

  /** Start following (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  /** Stop following and cancel the stream. */
  stop(): void {
    this.running = false;
    this.stream?.cancel();
    this.stream = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.wake?.();
  }

  /** Retry now instead of waiting out the back-off (e.g. after starting the agent). */
  retryNow(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.wake?.();
  }

  get isRunning(): boolean {
    return this.running;
  }

  private async loop(): Promise<void> {
    const min = this.options.minBackoffMs ?? 250;
    const max = this.options.maxBackoffMs ?? 5_000;
    let backoff = min;
    while (this.running) {
      let failure: OmniPanelError | undefined;
      try {
        const stream = this.connection.agent.watchEvents({
          afterSequence: this.lastSequence,
          instanceId: this.instanceId,
          topics: this.options.topics ?? [],
        });
        this.stream = stream;
        for await (const item of stream) {
          if (!this.running) break;
          if (item.event !== undefined) {
            backoff = min;
            this.lastSequence = item.event.sequence;
            this.instanceId = item.event.instanceId;
            this.emit("event", item.event);
          } else if (item.gap !== undefined) {
            this.lastSequence = item.gap.resumeSequence > 0n ? item.gap.resumeSequence - 1n : 0n;
            this.instanceId = item.gap.instanceId;
            this.emit("gap", item.gap);
          } else if (item.caughtUp !== undefined) {
            backoff = min;
            this.lastSequence ??= item.caughtUp.lastSequence;
            this.instanceId = item.caughtUp.instanceId;
            this.emit("caughtUp", item.caughtUp);
          }
        }
        if (!this.running) return;
        failure = classify(new Error("the agent ended the event stream"), this.connection.label);
      } catch (err) {
        if (!this.running) return;
        failure = classify(err, this.connection.label);
      }
      if (failure.kind === "unauthenticated" || failure.kind === "permission-denied" || failure.kind === "incompatible") {
        this.running = false;
        this.emit("stopped", failure);
        return;
      }
      this.emit("disconnected", failure, backoff);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, backoff);
      });
      this.wake = undefined;
      backoff = Math.min(backoff * 2, max);
    }
  }
}
