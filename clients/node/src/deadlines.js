// The service's timeout for every call of one breaker, on one timer rather than one per call.
//
// Every call of a breaker has the same timeout, so deadlines come in the order calls start: a
// queue. One timer is armed for the oldest deadline; when it fires, every call past its
// deadline expires and the timer is armed again for the next. A call that settles is only
// marked done (taken off the head when it gets there), so a call costs a push and a flag, and a
// busy breaker arms about one timer per timeout period instead of one per call.

import { performance } from 'node:perf_hooks';

/** Past this many settled calls at the head, the queue is compacted. */
const COMPACT_AFTER = 1024;

export class Deadlines {
  #queue = [];
  #head = 0;
  #timer = null;

  /** Tracks `call` (`{ deadline, done, expire() }`, deadline on performance.now()'s clock). */
  add(call) {
    this.#queue.push(call);
    if (this.#timer === null) this.#arm(call.deadline);
  }

  /** Tells that a call settled (its `done` is set): drops settled calls off the head. */
  settled() {
    const queue = this.#queue;
    while (this.#head < queue.length && queue[this.#head].done) this.#head += 1;
    this.#compact();
  }

  #compact() {
    const queue = this.#queue;
    if (this.#head === queue.length) {
      queue.length = 0;
      this.#head = 0;
    } else if (this.#head > COMPACT_AFTER && this.#head * 2 > queue.length) {
      queue.splice(0, this.#head);
      this.#head = 0;
    }
  }

  #arm(at) {
    this.#timer = setTimeout(() => this.#fire(), Math.max(1, at - performance.now()));
    // A pending call keeps the process alive through its own I/O, not through its timeout.
    this.#timer.unref?.();
  }

  #fire() {
    this.#timer = null;
    const now = performance.now();
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const call = queue[this.#head];
      if (!call.done && call.deadline > now) break;
      this.#head += 1;
      if (!call.done) {
        call.done = true;
        call.expire();
      }
    }
    this.#compact();
    if (this.#head < queue.length) this.#arm(queue[this.#head].deadline);
  }
}
