// What @breakerd/client costs per execute, beside opossum's fire, measured in the same run:
// a closed breaker (fn runs; its outcome is queued and reported to a real breakerd in
// batches) and an open one (rejected without calling fn). Each figure is the median of several
// rounds, the contenders alternating, minus the cost of the same loop calling fn bare.
//
// On the closed path fn waits for one turn of the event loop (setImmediate), as a call that
// does I/O does at least: that is also when queued reports go out, so every outcome is really
// reported (the count dropped is printed). On the open path fn is never called.
//
//   cargo build --release && cd clients/node && npm install && node bench.mjs
//
// breakerd: $BREAKERD_BIN, else target/release/breakerd, else target/debug/breakerd.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import CircuitBreaker from 'opossum';

const here = dirname(fileURLToPath(import.meta.url));
const release = resolve(here, '..', '..', 'target', 'release', 'breakerd');
if (!process.env.BREAKERD_BIN && existsSync(release)) process.env.BREAKERD_BIN = release;
const { ADMIN_TOKEN, REPORT_TOKEN, fakeMpesa, startDaemon, waitFor } = await import('./test/support.mjs');
const { connect } = await import('./src/index.js');

const CALLS = Number(process.env.CALLS ?? 100_000);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
/** Calls between turns of the event loop, so timers and reports get their turn (as they
 * would between an application's real calls), the same for every contender. */
const YIELD_EVERY = 100;

/** The protected call: one turn of the event loop. */
const fn = () => new Promise((done) => setImmediate(done, 1));
/** The bare loop's cost on the open path, where nothing is called. */
const nothing = async () => 1;
const yieldNow = () => new Promise((done) => setImmediate(done));

/** Nanoseconds per call of `call()`, awaited one after another. */
async function perCall(call) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) {
    try {
      await call();
    } catch {
      // An open breaker's rejection: what is measured.
    }
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldNow();
  }
  return Number(process.hrtime.bigint() - started) / CALLS;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const provider = await fakeMpesa();
const daemon = await startDaemon(provider, { timeout: '"30s"' });
const client = await connect({ url: daemon.url, reportToken: REPORT_TOKEN, logger: { warn() {}, info() {} } });
const mpesa = client.breaker('mpesa');
const opossum = new CircuitBreaker(fn, { timeout: 30000, errorThresholdPercentage: 50, resetTimeout: 120000 });

async function measure(label, contenders) {
  const samples = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, call] of Object.entries(contenders)) samples[name].push(await perCall(call));
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}

// Warm up every path, so the JIT has seen them all.
await measure('warm-up', { bare: fn, client: () => mpesa.execute(fn), opossum: () => opossum.fire() });

const closed = await measure('closed', {
  bare: fn,
  client: () => mpesa.execute(fn),
  opossum: () => opossum.fire(),
});

const forced = await fetch(`${daemon.url}/api/v1/circuit-breakers/mpesa/force-open`, {
  method: 'POST',
  headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
});
if (!forced.ok) throw new Error(`force-open answered ${forced.status}`);
await waitFor(() => mpesa.state === 'FORCED_OPEN', 'the client to see the breaker open');
opossum.open();
let called = 0;
const counted = async () => {
  called += 1;
};
const open = await measure('open', {
  bare: nothing,
  client: () => mpesa.execute(counted),
  opossum: () => opossum.fire(),
});
if (called !== 0) throw new Error(`fn ran ${called} times on an open breaker`);

const row = (label, figures) => {
  const overhead = (name) => Math.max(0, figures[name] - figures.bare);
  return `| ${label} | ${overhead('client').toFixed(0)} ns | ${overhead('opossum').toFixed(0)} ns | ${(overhead('opossum') / Math.max(overhead('client'), 1)).toFixed(1)}× |`;
};
console.log(`node ${process.version}, ${CALLS} calls × ${ROUNDS} rounds; median overhead per call over the bare loop (${closed.bare.toFixed(0)} ns closed, ${open.bare.toFixed(0)} ns open)`);
console.log('| breaker | @breakerd/client execute | opossum 8 fire | opossum / client |');
console.log('|---|---|---|---|');
console.log(row('closed (fn runs, outcome reported)', closed));
console.log(row('open (rejected, fn not called)', open));
console.log(`outcomes reported: ${(await (await fetch(`${daemon.url}/api/v1/circuit-breakers/mpesa`)).json()).totalCalls} breaker calls counted by breakerd; dropped: ${client.dropped}`);

await client.close();
await daemon.stop();
await provider.close();
