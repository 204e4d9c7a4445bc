// One service's breaker in this process: a mirror of breakerd's state for that service, or,
// while breakerd is away, a local breaker of the same thresholds. `execute` runs a call under it.

import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';

import { answerOf, answerOfError, reasonOf } from './answer.js';
import { Deadlines } from './deadlines.js';
import { openError, timeoutError } from './errors.js';

const CLOSED = 'CLOSED';
const OPEN = 'OPEN';
const HALF_OPEN = 'HALF_OPEN';
const FORCED_OPEN = 'FORCED_OPEN';
const DISABLED = 'DISABLED';

/** How long breakerd's refusal of a trial call is taken as the answer for the next calls. */
const REFUSAL_HOLD_MS = 25;

/** A plain success, before its duration is known. */
const SUCCESS = Object.freeze({ outcome: 'success' });

/** The event each state is announced with. */
const EVENT = { [OPEN]: 'open', [FORCED_OPEN]: 'open', [HALF_OPEN]: 'halfOpen', [CLOSED]: 'close', [DISABLED]: 'close' };

export class Breaker extends EventEmitter {
  #client;
  #fallback = null;
  #deadlines = new Deadlines();
  /** Settings from breakerd: failureThreshold, timeoutMs, resetTimeoutMs, halfOpenMaxCalls,
   * successThreshold. */
  #settings;
  #state = CLOSED;
  /** When an open breaker lets the next trial through (ms since the epoch), or 0. */
  #nextAttempt = 0;
  /** breakerd's counts when it last told us, and this process's since. */
  #base = { failureCount: 0, successCount: 0 };
  #failures = 0;
  #successes = 0;
  /** The local breaker's own bookkeeping (used while breakerd is away). */
  #consecutiveFailures = 0;
  #trialsInFlight = 0;
  #trialSuccesses = 0;
  /** Until when (ms since the epoch) breakerd's last refusal of a trial stands here. */
  #refusedUntil = 0;

  constructor(client, name, entry) {
    super();
    this.name = name;
    this.#client = client;
    this.#settings = { ...entry };
    this.sync(entry);
  }

  /** The service's timeout, in milliseconds (from alerts.toml). */
  get timeoutMs() {
    return this.#settings.timeoutMs;
  }

  /** The settings breakerd gave: thresholds and timeouts. */
  get settings() {
    return { ...this.#settings };
  }

  /** The state in force: `CLOSED`, `OPEN`, `HALF_OPEN` (or breakerd's `FORCED_OPEN`, `DISABLED`). */
  get state() {
    return this.#state;
  }

  /** The seed's stats: state, failureCount, successCount, uptime, and nextAttempt while open. */
  get stats() {
    const failureCount = this.#base.failureCount + this.#failures;
    const successCount = this.#base.successCount + this.#successes;
    const calls = failureCount + successCount;
    const stats = {
      state: this.#state,
      failureCount,
      successCount,
      uptime: calls === 0 ? 100 : Math.round((successCount / calls) * 10000) / 100,
    };
    if ((this.#state === OPEN || this.#state === FORCED_OPEN) && this.#nextAttempt) {
      stats.nextAttempt = new Date(this.#nextAttempt).toISOString();
    }
    return stats;
  }

  /** As opossum's: `fn(...args, error)` answers a call the breaker rejected or that failed. */
  fallback(fn) {
    this.#fallback = fn;
    return this;
  }

  /** Takes breakerd's word for this breaker (a snapshot or a change): the daemon's state wins. */
  sync(entry) {
    for (const key of ['failureThreshold', 'timeoutMs', 'resetTimeoutMs', 'halfOpenMaxCalls', 'successThreshold']) {
      if (typeof entry[key] === 'number') this.#settings[key] = entry[key];
    }
    this.#base = { failureCount: entry.failureCount ?? 0, successCount: entry.successCount ?? 0 };
    this.#failures = 0;
    this.#successes = 0;
    this.#consecutiveFailures = 0;
    this.#trialsInFlight = 0;
    this.#trialSuccesses = 0;
    this.#refusedUntil = 0;
    this.#nextAttempt = entry.nextAttempt ? Date.parse(entry.nextAttempt) : 0;
    this.#move(entry.state);
  }

  #move(state) {
    if (state === this.#state) return;
    const from = this.#state;
    this.#state = state;
    if (EVENT[state] !== EVENT[from]) this.emit(EVENT[state], this.stats);
    this.emit('state', state, from);
  }

  /** Runs `fn(...args)` under the breaker: rejected at once while open (fn not called),
   * rejected with the seed's timeout error past the service's timeout. */
  execute(fn, ...args) {
    const state = this.#state;
    if (state === CLOSED || state === DISABLED) return this.#run(fn, args, undefined, false);
    return this.#gated(fn, args, state);
  }

  /** A call while the breaker is not closed. */
  #gated(fn, args, state) {
    const local = !this.#client.connected;
    if (state === OPEN && local && Date.now() >= this.#nextAttempt) {
      this.#move(HALF_OPEN);
      state = HALF_OPEN;
    }
    if (state !== HALF_OPEN) return this.#refuse(args, openError(this.name, state));
    if (local) {
      if (this.#trialsInFlight >= this.#settings.halfOpenMaxCalls) {
        return this.#refuse(args, openError(this.name, HALF_OPEN));
      }
      this.#trialsInFlight += 1;
      return this.#run(fn, args, undefined, true);
    }
    if (Date.now() < this.#refusedUntil) return this.#refuse(args, openError(this.name, HALF_OPEN));
    return this.#client.askTrial(this.name).then((leave) => {
      if (leave.refused) {
        // Every slot is taken: a burst of calls asks once, not once each.
        this.#refusedUntil = Date.now() + REFUSAL_HOLD_MS;
        return this.#refuse(args, openError(this.name, leave.state || HALF_OPEN));
      }
      if (leave.away) return this.#gated(fn, args, this.#state);
      return this.#run(fn, args, leave.permit || undefined, false);
    });
  }

  #refuse(args, error) {
    if (this.#fallback) return this.#fall(args, error);
    return Promise.reject(error);
  }

  #fall(args, error) {
    this.emit('fallback', error);
    const fallback = this.#fallback;
    return new Promise((resolve) => resolve(fallback(...args, error)));
  }

  /** Runs the call with the service's timeout and reports it. */
  #run(fn, args, permit, localTrial) {
    const started = performance.now();
    let result;
    try {
      result = fn(...args);
    } catch (error) {
      result = Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      const timeoutMs = this.#settings.timeoutMs;
      const call = {
        deadline: started + timeoutMs,
        done: false,
        expire: () => {
          this.#report(started, permit, { outcome: 'timeout' }, false, localTrial);
          const error = timeoutError(this.name, timeoutMs);
          if (this.#fallback) this.#fall(args, error).then(resolve, reject);
          else reject(error);
        },
      };
      this.#deadlines.add(call);
      Promise.resolve(result).then(
        (value) => {
          if (call.done) return;
          call.done = true;
          this.#deadlines.settled();
          const answer = answerOf(value);
          this.#report(started, permit, answer || SUCCESS, true, localTrial);
          resolve(value);
        },
        (error) => {
          if (call.done) return;
          call.done = true;
          this.#deadlines.settled();
          const answer = answerOfError(error);
          this.#report(started, permit, answer || { outcome: 'failure', reason: reasonOf(error) }, false, localTrial);
          if (this.#fallback) this.#fall(args, error).then(resolve, reject);
          else reject(error);
        },
      );
    });
  }

  /** Counts the call here, moves the local breaker while breakerd is away, and queues the
   * report. `resolved`: the application got a value (a success, as the seed counts it). */
  #report(started, permit, item, resolved, localTrial) {
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    if (item === SUCCESS && !permit) {
      // The common case, written as its JSON at once: no object to keep or to serialise later.
      item = `{"outcome":"success","durationMs":${durationMs}}`;
    } else {
      item.durationMs = durationMs;
      if (permit) item.permit = permit;
    }
    if (resolved) this.#successes += 1;
    else this.#failures += 1;
    if (!this.#client.connected || localTrial) this.#local(resolved, localTrial);
    this.#client.enqueue(this.name, item);
  }

  /** The local breaker: the seed's consecutive-failure rule with breakerd's thresholds. */
  #local(resolved, trial) {
    if (trial) {
      this.#trialsInFlight = Math.max(0, this.#trialsInFlight - 1);
      if (this.#state !== HALF_OPEN) return;
      if (!resolved) return this.#openLocally();
      this.#trialSuccesses += 1;
      if (this.#trialSuccesses >= this.#settings.successThreshold) {
        this.#consecutiveFailures = 0;
        this.#trialSuccesses = 0;
        this.#move(CLOSED);
      }
      return;
    }
    if (this.#state !== CLOSED) return;
    if (resolved) {
      this.#consecutiveFailures = 0;
      return;
    }
    this.#consecutiveFailures += 1;
    if (this.#consecutiveFailures >= this.#settings.failureThreshold) this.#openLocally();
  }

  #openLocally() {
    this.#nextAttempt = Date.now() + this.#settings.resetTimeoutMs;
    this.#trialsInFlight = 0;
    this.#trialSuccesses = 0;
    this.#move(OPEN);
  }
}
