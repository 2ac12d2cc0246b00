// Polling while a page is open; paused while the tab is hidden. Only new rows travel:
// callers ask for what is after what they hold. A poll that fails (no answer, or the server's
// refusal) is said in the page's header until one succeeds (ui.js: polled).
import { polled } from "./ui.js";

export class Poller {
  constructor(fn, everyMs = 1500) { this.fn = fn; this.every = everyMs; this.timer = null; this.busy = false; }
  start() {
    this.stop();
    this.timer = setInterval(() => this.tick(), this.every);
    return this;
  }
  async tick() {
    if (this.busy || document.hidden) return;
    this.busy = true;
    try {
      await this.fn();
      if (this.timer) polled(null);
    } catch (e) {
      console.warn("poll failed", e);
      if (this.timer) polled(e); // (not once the page is left: its poll says nothing of the next)
    } finally { this.busy = false; }
  }
  stop() { if (this.timer) clearInterval(this.timer); this.timer = null; }
}
