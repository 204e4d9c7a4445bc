// Type declarations of @breakerd/client.

import { EventEmitter } from 'node:events';

/** A breaker's state as breakerd names it. */
export type BreakerState = 'CLOSED' | 'OPEN' | 'HALF_OPEN' | 'FORCED_OPEN' | 'DISABLED';

/** The seed's stats of one breaker. */
export interface Stats {
  state: BreakerState;
  failureCount: number;
  successCount: number;
  /** Percent of calls that succeeded (100 before any call). */
  uptime: number;
  /** While open: when the next trial call may go (ISO 8601). */
  nextAttempt?: string;
}

/** The service's own settings, from alerts.toml. */
export interface BreakerSettings {
  failureThreshold: number;
  timeoutMs: number;
  resetTimeoutMs: number;
  halfOpenMaxCalls: number;
  successThreshold: number;
}

/** "Circuit breaker mpesa is OPEN". */
export interface OpenError extends Error {
  circuitBreakerOpen: true;
  service: string;
  state: BreakerState;
}

/** "Circuit breaker mpesa timeout after 30000ms". */
export interface TimeoutError extends Error {
  timeout: true;
  service: string;
}

export interface ConnectOptions {
  /** breakerd's API, e.g. `http://127.0.0.1:9477`. */
  url: string;
  /** `server.report_token` (or the service's own `report_token`). */
  reportToken?: string;
  /** Send queued outcomes at least this often (default 100 ms)... */
  batchMs?: number;
  /** ...or once this many are queued (default 100). */
  batchSize?: number;
  /** Outcomes queued at most; more are dropped and counted in `dropped` (default 10000). */
  maxQueue?: number;
  /** Wrap `globalThis.fetch` so each Response remembers its request's method (default true). */
  trackFetch?: boolean;
  /** Where the client says breakerd went away or came back (default `console`). */
  logger?: { warn?(message: string): void; info?(message: string): void };
  /** How long `connect` waits for the first snapshot (default 10000 ms). */
  connectTimeoutMs?: number;
  /** A stream silent this long is taken as broken and reopened (default 45000 ms). */
  idleTimeoutMs?: number;
}

export declare class Breaker extends EventEmitter {
  /** The service's name in alerts.toml. */
  readonly name: string;
  /** The state in force (breakerd's, or the local breaker's while breakerd is away). */
  readonly state: BreakerState;
  /** The service's timeout in milliseconds. */
  readonly timeoutMs: number;
  readonly settings: BreakerSettings;
  /** The seed's stats. */
  readonly stats: Stats;
  /** Runs `fn(...args)` under the breaker; rejects at once while open, without calling fn. */
  execute<A extends unknown[], T>(fn: (...args: A) => T | Promise<T>, ...args: A): Promise<T>;
  /** As opossum's: `fn(...args, error)` answers a rejected or failed call. */
  fallback<A extends unknown[], T>(fn: (...argsAndError: [...A, Error]) => T | Promise<T>): this;
  on(event: 'open' | 'halfOpen' | 'close', listener: (stats: Stats) => void): this;
  on(event: 'fallback', listener: (error: Error) => void): this;
  on(event: 'state', listener: (state: BreakerState, from: BreakerState) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export declare class Client extends EventEmitter {
  /** Whether the state stream from breakerd is up (false: local breakers decide). */
  readonly connected: boolean;
  /** Outcomes not reported: the queue was full, or breakerd could not be reached. */
  readonly dropped: number;
  /** The breaker of a service named in alerts.toml; throws for an unknown one. */
  breaker(name: string): Breaker;
  /** The seed's `circuitBreakerManager.getAllStats()`. */
  getAllStats(): Record<string, Stats>;
  /** Stops following breakerd and sends what is queued. */
  close(): Promise<void>;
  on(event: 'connected', listener: () => void): this;
  on(event: 'disconnected', listener: (reason: string) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Connects and waits for breakerd's first snapshot of its breakers. */
export declare function connect(options: ConnectOptions): Promise<Client>;
export declare function openError(service: string, state?: BreakerState): OpenError;
export declare function timeoutError(service: string, timeoutMs: number): TimeoutError;
