// POSTs to breakerd, one exchange at a time over one kept-alive connection, written as bare
// HTTP/1.1: reports and trial requests are small and frequent, and a request here costs a
// fraction of node:http's (no request object, no header validation, one write).

import net from 'node:net';
import tls from 'node:tls';

/** The longest answer read back, in bytes. */
const MAX_ANSWER = 256 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

export class Poster {
  #host;
  #port;
  #secure;
  #hostHeader;
  #socket = null;
  #chain = Promise.resolve();
  #closed = false;

  constructor(base) {
    const url = new URL(base);
    this.#secure = url.protocol === 'https:';
    this.#host = url.hostname.replace(/^\[|\]$/g, '');
    this.#port = Number(url.port) || (this.#secure ? 443 : 80);
    this.#hostHeader = url.host;
  }

  /** POSTs `body` (a string) to `path`; resolves to `{ status, text }`, rejects on a network
   * error or after `timeoutMs`. Exchanges run one after another. */
  post(path, headers, body, timeoutMs = 10000) {
    const run = () => this.#exchange(path, headers, body, timeoutMs, true);
    const result = this.#chain.then(run, run);
    this.#chain = result.catch(() => {});
    return result;
  }

  close() {
    this.#closed = true;
    this.#socket?.destroy();
    this.#socket = null;
  }

  #connect() {
    if (this.#socket && !this.#socket.destroyed) return { socket: this.#socket, reused: true };
    const options = { host: this.#host, port: this.#port };
    const socket = this.#secure ? tls.connect({ ...options, servername: net.isIP(this.#host) ? undefined : this.#host }) : net.connect(options);
    socket.setNoDelay(true);
    // An idle connection to breakerd never keeps the application's process alive.
    socket.unref();
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.#socket === socket) this.#socket = null;
    });
    this.#socket = socket;
    return { socket, reused: false };
  }

  #exchange(path, headers, body, timeoutMs, mayRetry) {
    if (this.#closed) return Promise.reject(new Error('closed'));
    const { socket, reused } = this.#connect();
    return new Promise((resolve, reject) => {
      let received = Buffer.alloc(0);
      let settled = false;
      const finish = (error, answer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onError);
        if (error) {
          socket.destroy();
          // breakerd closes a connection idle for a while: a reused one that ends before any
          // answer was never read, so the request is sent again on a fresh one.
          if (reused && mayRetry && received.length === 0) {
            this.#exchange(path, headers, body, timeoutMs, false).then(resolve, reject);
          } else {
            reject(error);
          }
        } else {
          resolve(answer);
        }
      };
      const onData = (chunk) => {
        received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
        if (received.length > MAX_ANSWER) return finish(new Error('answer too long'));
        let answer;
        try {
          answer = parse(received);
        } catch (error) {
          return finish(error);
        }
        if (answer === null) return undefined;
        if (answer.close) socket.destroy();
        return finish(null, { status: answer.status, text: answer.text });
      };
      const onClose = () => finish(new Error('connection closed'));
      const onError = (error) => finish(error);
      const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref?.();
      socket.on('data', onData);
      socket.on('close', onClose);
      socket.on('error', onError);
      let head = `POST ${path} HTTP/1.1\r\nhost: ${this.#hostHeader}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
      for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
      socket.write(`${head}\r\n${body}`);
    });
  }
}

/** The answer in `bytes` once it is whole: `{ status, text, close }`, else `null`. */
function parse(bytes) {
  const end = bytes.indexOf(HEAD_END);
  if (end < 0) return null;
  const lines = bytes.toString('latin1', 0, end).split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  let length = null;
  let chunked = false;
  let close = false;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim().toLowerCase();
    if (name === 'content-length') length = Number(value);
    else if (name === 'transfer-encoding') chunked = value.includes('chunked');
    else if (name === 'connection') close = value.includes('close');
  }
  const start = end + HEAD_END.length;
  if (chunked) {
    const parts = [];
    let at = start;
    for (;;) {
      const lineEnd = bytes.indexOf('\r\n', at);
      if (lineEnd < 0) return null;
      const size = parseInt(bytes.toString('latin1', at, lineEnd), 16);
      if (Number.isNaN(size)) throw new Error('a malformed chunk');
      if (size === 0) {
        if (bytes.indexOf('\r\n\r\n', lineEnd) < 0 && bytes.length < lineEnd + 4) return null;
        return { status, text: Buffer.concat(parts).toString('utf8'), close };
      }
      if (bytes.length < lineEnd + 2 + size + 2) return null;
      parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  if (length === null) {
    // No length: the answer ends with the connection (never from axum, but be safe).
    return null;
  }
  if (bytes.length < start + length) return null;
  return { status, text: bytes.toString('utf8', start, start + length), close };
}
