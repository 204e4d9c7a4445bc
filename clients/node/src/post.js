// POSTs to breakerd over kept-alive connections (node:http): reports and trial requests are
// small and frequent, and node:http costs a fraction of fetch per request.

import http from 'node:http';
import https from 'node:https';

/** The longest answer read back, in bytes. */
const MAX_ANSWER = 64 * 1024;

export class Poster {
  #base;
  #module;
  #agent;

  constructor(base) {
    this.#base = new URL(base);
    this.#module = this.#base.protocol === 'https:' ? https : http;
    this.#agent = new this.#module.Agent({ keepAlive: true, maxSockets: 4 });
  }

  /** POSTs `body` (a string) to `path`; resolves to `{ status, text }`, rejects on a network
   * error or after `timeoutMs`. */
  post(path, headers, body, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const request = this.#module.request(new URL(path, this.#base), {
        method: 'POST',
        agent: this.#agent,
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
      }, (response) => {
        const chunks = [];
        let size = 0;
        response.on('data', (chunk) => {
          if (size < MAX_ANSWER) chunks.push(chunk);
          size += chunk.length;
        });
        response.on('end', () => resolve({ status: response.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      });
      request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.on('error', reject);
      request.end(body);
    });
  }

  close() {
    this.#agent.destroy();
  }
}
