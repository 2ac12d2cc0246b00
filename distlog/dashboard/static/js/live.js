// Polling while a page is open; paused while the tab is hidden. Only new rows travel:
// callers ask for what is after what they hold.
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
    try { await this.fn(); } catch (e) { console.warn("poll failed", e); } finally { this.busy = false; }
  }
  stop() { if (this.timer) clearInterval(this.timer); this.timer = null; }
}
