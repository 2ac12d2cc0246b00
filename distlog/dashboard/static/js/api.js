// The JSON API: GET only; errors carry the server's reason.
export class ApiError extends Error {
  constructor(status, reason) { super(reason); this.status = status; }
}

// no answer at all (the server stopped, the network between is down): not a refusal
export class Unreachable extends Error {}

// when the server last answered any request (ms since the epoch): a poll waiting on a slow
// read is no lost contact while other answers come (live.js)
export const answered = { at: 0 };

export function url(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    for (const item of Array.isArray(v) ? v : [v]) q.append(k, String(item));
  }
  const s = q.toString();
  return `api/${path}${s ? "?" + s : ""}`;
}

export async function get(path, params = {}, opts = {}) {
  let res;
  try {
    res = await fetch(url(path, params), { credentials: "same-origin", signal: opts.signal });
    answered.at = Date.now();
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new Unreachable(`no answer from the dashboard server (${e.message}): it may have stopped; ` +
      "start `distlog serve` again, then reload this page");
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}
