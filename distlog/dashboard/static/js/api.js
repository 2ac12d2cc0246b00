// The JSON API: GET only; errors carry the server's reason.
export class ApiError extends Error {
  constructor(status, reason) { super(reason); this.status = status; }
}

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
  const res = await fetch(url(path, params), { credentials: "same-origin", signal: opts.signal });
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new ApiError(res.status, (body && body.error) || `${res.status} ${res.statusText}`);
  return body;
}
