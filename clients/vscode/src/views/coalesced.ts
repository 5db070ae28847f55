// A reload that collapses bursts: the trees re-read the agent on every
// event, and a burst of events (a pull's model changes, a save touching
// many files) must cost one read in flight plus at most one more, never a
// queue of reads. No `vscode` import, so mocha tests it directly.

export class Coalesced {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(private readonly work: () => Promise<void>) {}

  /** Runs the work now, or once more after the run under way (callers
   * during a run share that one extra run); resolves when it is done. */
  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.work();
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }
}
