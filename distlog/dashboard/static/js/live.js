// Polling while a page is open; paused while the tab is hidden. Only new rows travel:
// callers ask for what is after what they hold. A poll that fails (no answer, or the server's
// refusal) is said in the page's header until one succeeds (ui.js: polled).
// A poll still waiting when the server has answered nothing for `patience` ms is said as lost
// contact while it waits: a server suspended (Ctrl-Z in its terminal) or stuck keeps its port
// open, and a request to it waits without end, so it never fails. (15 s: a log search may
// match for 10 s; window.distlog.patienceMs: tests use less.)
import { Unreachable, answered } from "./api.js";
import { polled } from "./ui.js";

export class Poller {
  constructor(fn, everyMs = 1500) { this.fn = fn; this.every = everyMs; this.timer = null; this.busy = false;
    this.patience = Math.max(15000, 3 * everyMs);
  }
  start() {
    this.stop();
    this.timer = setInterval(() => this.tick(), this.every);
    return this;
  }
  async tick() {
    if (this.busy || document.hidden) return;
    this.busy = true;
    const sent = Date.now();
    const silent = setInterval(() => { // (once per second while this poll waits)
      const patience = (window.distlog && window.distlog.patienceMs) || this.patience;
      const last = Math.max(sent, answered.at);
      if (this.timer && Date.now() - last >= patience) {
        polled(new Unreachable(`no answer from the dashboard server for ${Math.round((Date.now() - last) / 1000)} s: ` +
          "it may be suspended (Ctrl-Z in its terminal: fg) or stuck; still waiting"), new Date(last));
      }
    }, 1000);
    try {
      await this.fn();
      if (this.timer) polled(null);
    } catch (e) {
      console.warn("poll failed", e);
      if (this.timer) polled(e); // (not once the page is left: its poll says nothing of the next)
    } finally { clearInterval(silent); this.busy = false; }
  }
  stop() { if (this.timer) clearInterval(this.timer); this.timer = null; }
}
