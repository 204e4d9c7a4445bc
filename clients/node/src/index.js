// @breakerd/client: breakerd's circuit breakers in a Node.js process. One long-lived stream
// mirrors every breaker's state, so a call on an open breaker is rejected here without a round
// trip; outcomes go back in batches, with the provider's answer for breakerd to judge.

import { EventEmitter } from 'node:events';

import { bodyStart, trackFetch, untrackedFetch } from './answer.js';
import { Breaker } from './breaker.js';
import { Poster } from './post.js';
import { events } from './sse.js';

export { openError, timeoutError } from './errors.js';
export { Breaker } from './breaker.js';

const STREAM_PATH = '/api/v1/circuit-breakers/stream';
/** The most outcomes one report carries (the outcome API takes up to 500). */
const MAX_REPORT = 500;
/** Reports on their way at once (the connections kept to breakerd). */
const MAX_SENDING = 1;
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 2000;

/** Connects to breakerd at `url` and waits for the first snapshot of its breakers (their
 * states and the thresholds and timeouts from alerts.toml). */
export async function connect(options) {
  const client = new Client(options);
  try {
    await client.ready;
  } catch (error) {
    await client.close();
    throw error;
  }
  return client;
}

export class Client extends EventEmitter {
  #url;
  #token;
  #fetch;
  #poster;
  #logger;
  #batchMs;
  #batchSize;
  #maxQueue;
  #idleTimeoutMs;
  #breakers = new Map();
  /** Outcomes not yet sent, per service. */
  #queue = new Map();
  /** How many outcomes `#queue` holds. */
  #queued = 0;
  #timer = null;
  /** A flush is due at the next turn of the event loop. */
  #soon = false;
  /** Reports on their way. */
  #sending = new Set();
  #dropped = 0;
  #connected = false;
  #closed = false;
  #said = new Set();
  #stream = null;
  #loop;
  #ready;
  #wake = null;

  constructor({
    url,
    reportToken,
    batchMs = 100,
    batchSize = 100,
    maxQueue = 10000,
    trackFetch: track = true,
    logger = console,
    connectTimeoutMs = 10000,
    idleTimeoutMs = 45000,
  } = {}) {
    super();
    if (!url) throw new TypeError('connect: url is required (breakerd\'s API, e.g. http://127.0.0.1:9477)');
    this.#url = String(url).replace(/\/+$/, '');
    this.#token = reportToken;
    this.#fetch = untrackedFetch();
    this.#poster = new Poster(this.#url);
    if (track) trackFetch();
    this.#logger = logger;
    this.#batchMs = batchMs;
    this.#batchSize = batchSize;
    this.#maxQueue = maxQueue;
    this.#idleTimeoutMs = idleTimeoutMs;
    let settle;
    this.ready = new Promise((resolve, reject) => {
      settle = { resolve, reject };
    });
    this.#ready = settle;
    const giveUp = setTimeout(() => {
      settle.reject(new Error(`breakerd at ${this.#url} did not send its breakers within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    this.ready.then(() => clearTimeout(giveUp), () => clearTimeout(giveUp));
    this.#loop = this.#follow();
  }

  /** Whether the state stream from breakerd is up (false: local breakers decide). */
  get connected() {
    return this.#connected;
  }

  /** Outcomes not reported: the queue was full, or breakerd could not be reached. */
  get dropped() {
    return this.#dropped;
  }

  /** The breaker of service `name`, as alerts.toml names it. */
  breaker(name) {
    const breaker = this.#breakers.get(name);
    if (!breaker) {
      throw new Error(`breakerd has no service ${name}; it has ${[...this.#breakers.keys()].join(', ') || 'none'}`);
    }
    return breaker;
  }

  /** The seed's `circuitBreakerManager.getAllStats()`: `{ mpesa: { state, failureCount,
   * successCount, uptime, nextAttempt }, ... }`. */
  getAllStats() {
    const all = {};
    for (const [name, breaker] of this.#breakers) all[name] = breaker.stats;
    return all;
  }

  /** Stops following breakerd and sends what is queued. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#stream?.abort();
    this.#wake?.();
    this.#ready.reject(new Error('closed'));
    this.ready.catch(() => {});
    await this.#loop;
    clearTimeout(this.#timer);
    this.#timer = null;
    await this.#drain();
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#poster.close();
    this.#connected = false;
  }

  #say(key, message) {
    if (this.#said.has(key)) return;
    this.#said.add(key);
    this.#logger.warn?.(`breakerd: ${message}`);
  }

  #away(reason) {
    if (this.#connected) this.emit('disconnected', reason);
    this.#connected = false;
    this.#say('away', `${this.#url} is unreachable (${reason}); calls go on against local breakers with each service's thresholds until it is back`);
  }

  /** Follows the state stream, reconnecting while not closed. */
  async #follow() {
    let wait = RECONNECT_FIRST_MS;
    while (!this.#closed) {
      const controller = new AbortController();
      this.#stream = controller;
      let idle = null;
      const watch = () => {
        clearTimeout(idle);
        idle = setTimeout(() => controller.abort(new Error('the stream went quiet')), this.#idleTimeoutMs);
        idle.unref?.();
      };
      try {
        watch();
        const response = await this.#fetch(this.#url + STREAM_PATH, {
          headers: { accept: 'text/event-stream' },
          signal: controller.signal,
        });
        if (!response.ok || !response.body) throw new Error(`the state stream answered ${response.status}`);
        for await (const event of events(response.body, watch)) {
          wait = RECONNECT_FIRST_MS;
          this.#take(event);
        }
        if (!this.#closed) this.#away('the state stream ended');
      } catch (error) {
        if (!this.#closed) this.#away(error?.cause?.code || error?.message || String(error));
      } finally {
        clearTimeout(idle);
      }
      if (this.#closed) break;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
      wait = Math.min(wait * 2, RECONNECT_MAX_MS);
    }
  }

  #take({ event, data }) {
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    if (event === 'snapshot') {
      for (const [name, entry] of Object.entries(parsed.services || {})) {
        const breaker = this.#breakers.get(name);
        if (breaker) breaker.sync(entry);
        else this.#breakers.set(name, new Breaker(this, name, entry));
      }
      const wasAway = this.#said.has('away');
      this.#connected = true;
      if (wasAway) {
        this.#said.delete('away');
        this.#logger.info?.(`breakerd: ${this.#url} is back; its breaker states are followed again`);
      }
      this.emit('connected');
      this.#ready.resolve();
    } else if (event === 'state' && typeof parsed.service === 'string') {
      const breaker = this.#breakers.get(parsed.service);
      if (breaker) breaker.sync(parsed);
      else this.#breakers.set(parsed.service, new Breaker(this, parsed.service, parsed));
    }
  }

  #headers() {
    const headers = { 'content-type': 'application/json' };
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    return headers;
  }

  /** Leave for one trial call of a half-open breaker: `{ permit }` (null: the breaker closed,
   * call freely), `{ refused, state }`, or `{ away }` when breakerd cannot be asked. */
  async askTrial(name) {
    let response;
    try {
      response = await this.#poster.post(`/api/v1/circuit-breakers/${encodeURIComponent(name)}/trials`, this.#headers(), '');
    } catch (error) {
      this.#away(error?.code || error?.message || String(error));
      return { away: true };
    }
    let body = {};
    try {
      body = JSON.parse(response.text);
    } catch {
      // Judged by the status alone.
    }
    if (response.status === 200) return { permit: body.permit ?? null };
    if (!body.circuitBreakerOpen) {
      this.#say(`trial-${response.status}`, `asking for a trial call of ${name} answered ${response.status}: ${body.error || body.message || ''}`);
    }
    return { refused: true, state: body.state };
  }

  /** Queues one outcome report (an object, or a plain verdict already written as JSON);
   * never waits. */
  enqueue(service, item) {
    if (this.#queued >= this.#maxQueue) {
      this.#dropped += 1;
      return;
    }
    let items = this.#queue.get(service);
    if (items === undefined) {
      items = [];
      this.#queue.set(service, items);
    }
    items.push(item);
    if (typeof item !== 'string' && 'body' in item) {
      (items.bodies ??= []).push(item);
    }
    this.#queued += 1;
    if (this.#queued >= this.#batchSize || item.permit) {
      if (this.#soon) return;
      this.#soon = true;
      setImmediate(() => {
        this.#soon = false;
        this.#flush();
      });
    } else if (this.#timer === null) {
      this.#arm();
    }
  }

  #arm() {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#flush();
    }, this.#batchMs);
    this.#timer.unref?.();
  }

  /** Sends what is queued, one report per service of up to MAX_REPORT outcomes, with at most
   * MAX_SENDING sendings under way; what is left waits for one to finish. */
  #flush() {
    while (this.#queued > 0 && this.#sending.size < MAX_SENDING) {
      const taken = this.#takeQueued();
      const sending = this.#send(taken).finally(() => {
        this.#sending.delete(sending);
        if (this.#queued >= this.#batchSize) this.#flush();
        else if (this.#queued > 0 && this.#timer === null) this.#arm();
      });
      this.#sending.add(sending);
    }
  }

  /** Takes up to MAX_REPORT queued outcomes of each service off the queue. */
  #takeQueued() {
    const taken = new Map();
    for (const [service, items] of this.#queue) {
      if (items.length <= MAX_REPORT) {
        taken.set(service, items);
        this.#queue.delete(service);
        this.#queued -= items.length;
      } else {
        const batch = items.splice(0, MAX_REPORT);
        if (items.bodies) {
          // The answers with bodies go with the first report; reading twice is harmless.
          batch.bodies = items.bodies;
          items.bodies = undefined;
        }
        taken.set(service, batch);
        this.#queued -= MAX_REPORT;
      }
    }
    return taken;
  }

  /** Sends everything queued and waits for it. */
  async #drain() {
    this.#flush();
    while (this.#sending.size > 0) {
      await Promise.all(this.#sending);
      this.#flush();
    }
  }

  async #send(taken) {
    if (!this.#connected) {
      // Reports nothing it cannot send: breakerd has the state it had, and will again.
      for (const items of taken.values()) this.#dropped += items.length;
      return;
    }
    await Promise.all([...taken].map(async ([service, items]) => {
      for (const item of items.bodies ?? []) {
        if (typeof item.body !== 'object' || item.body === null) continue;
        const body = await bodyStart(item.body);
        if (body === undefined) delete item.body;
        else item.body = body;
      }
      for (let start = 0; start < items.length; start += MAX_REPORT) {
        const batch = items.slice(start, start + MAX_REPORT);
        try {
          const path = `/api/v1/circuit-breakers/${encodeURIComponent(service)}/outcomes`;
          const body = `[${batch.map((item) => (typeof item === 'string' ? item : JSON.stringify(item))).join(',')}]`;
          const response = await this.#poster.post(path, this.#headers(), body);
          if (response.status !== 200) {
            this.#dropped += batch.length;
            this.#say(`report-${response.status}`, `a report of ${service} answered ${response.status}: ${response.text.slice(0, 300)}`);
          }
        } catch {
          this.#dropped += batch.length;
        }
      }
    }));
  }
}
