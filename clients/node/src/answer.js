// HTTP answers a protected call resolved or rejected with (a fetch Response, an axios response
// or error), turned into what the outcome API judges: method, path, status, headers and the
// start of the body, read from a clone so the application's own body is never consumed.

/** The most of an answer's body sent for judging: the provider rules read the start. */
export const BODY_BYTES = 8 * 1024;
/** How long reading the start of a body may take before it is sent without. */
const BODY_WAIT_MS = 1000;
/** The headers provider rules read. */
const HEADERS = ['retry-after', 'content-type'];

const methods = new WeakMap();
const WRAPPED = Symbol.for('breakerd.fetch.wrapped');

/** Wraps `globalThis.fetch` once, so each Response remembers its request's method (a Response
 * does not say it, and the provider rules match on it). */
export function trackFetch() {
  const original = globalThis.fetch;
  if (typeof original !== 'function' || original[WRAPPED]) return;
  const tracked = function fetch(input, init) {
    const method = (init && init.method) || (input && typeof input === 'object' && input.method) || 'GET';
    return original(input, init).then((response) => {
      methods.set(response, String(method).toUpperCase());
      return response;
    });
  };
  tracked[WRAPPED] = original;
  globalThis.fetch = tracked;
}

/** The fetch that was there before `trackFetch`, for the client's own calls. */
export function untrackedFetch() {
  const current = globalThis.fetch;
  return (current && current[WRAPPED]) || current;
}

function pathOf(url, base) {
  try {
    const parsed = new URL(url, base || 'http://placeholder.invalid');
    return parsed.pathname + parsed.search;
  } catch {
    return null;
  }
}

// Read once: the global is a lazy getter, and this is on every call's path.
const FetchResponse = globalThis.Response;

function isFetchResponse(value) {
  return FetchResponse !== undefined && value instanceof FetchResponse;
}

function isAxiosResponse(value) {
  return value !== null && typeof value === 'object' && typeof value.status === 'number'
    && value.config !== null && typeof value.config === 'object' && 'headers' in value;
}

/** What the outcome API is told of `value`, an answer; `null` when it is none. The body is a
 * promise of its start (or of `undefined`), read later, off the call's path. */
export function answerOf(value) {
  if (value === null || typeof value !== 'object') return null;
  if (isFetchResponse(value)) {
    const path = value.url ? pathOf(value.url) : null;
    if (!path) return null;
    const headers = {};
    for (const name of HEADERS) {
      const header = value.headers.get(name);
      if (header !== null) headers[name] = header;
    }
    let copy = null;
    if (!value.bodyUsed && value.body) {
      try {
        copy = value.clone();
      } catch {
        copy = null;
      }
    }
    return {
      method: methods.get(value) || 'GET',
      path,
      status: value.status,
      headers,
      body: copy,
    };
  }
  if (isAxiosResponse(value)) {
    const config = value.config;
    const path = pathOf(config.url || '/', config.baseURL);
    if (!path) return null;
    const headers = {};
    for (const name of HEADERS) {
      const header = value.headers && (typeof value.headers.get === 'function' ? value.headers.get(name) : value.headers[name]);
      if (header !== undefined && header !== null) headers[name] = String(header);
    }
    let body = value.data;
    if (body !== undefined && body !== null && typeof body !== 'string') {
      try {
        body = JSON.stringify(body);
      } catch {
        body = undefined;
      }
    }
    return {
      method: String(config.method || 'get').toUpperCase(),
      path,
      status: value.status,
      headers,
      body: typeof body === 'string' ? body.slice(0, BODY_BYTES) : undefined,
    };
  }
  return null;
}

/** The answer an error carries (an axios error with its response), or `null`. */
export function answerOfError(error) {
  if (error && typeof error === 'object' && error.response && error.config && !error.response.config) {
    return answerOf({ ...error.response, config: error.config });
  }
  return error && typeof error === 'object' && error.response ? answerOf(error.response) : null;
}

/** The start of `copy`'s body as text (at most BODY_BYTES), reading no further, or `undefined`
 * if it does not come in time. */
export async function bodyStart(copy) {
  if (typeof copy === 'string' || copy === undefined || copy === null) return copy ?? undefined;
  const reader = copy.body.getReader();
  const chunks = [];
  let size = 0;
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(resolve, BODY_WAIT_MS, 'late');
    timer.unref?.();
  });
  try {
    while (size < BODY_BYTES) {
      const read = await Promise.race([reader.read(), late]);
      if (read === 'late' || read.done) break;
      chunks.push(read.value);
      size += read.value.byteLength;
    }
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(Math.min(size, BODY_BYTES));
  let offset = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - offset);
    bytes.set(part, offset);
    offset += part.length;
    if (offset >= bytes.length) break;
  }
  // A multi-byte character cut at the end is dropped rather than sent broken.
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes).replace(/\uFFFD$/, '');
}

/** What a thrown error says of why the call failed, in the outcome API's words. */
export function reasonOf(error) {
  const code = (error && (error.code || (error.cause && error.cause.code))) || '';
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'connect';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') return 'reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ECONNABORTED') return 'timeout';
  if (String(code).startsWith('CERT_') || String(code).startsWith('ERR_TLS') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT') return 'tls';
  return 'reported';
}
