// One application process against breakerd: the seed's API, answers judged by breakerd, the
// seed's timeout error, and life without the daemon.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { connect } from '../src/index.js';
import { REPORT_TOKEN, fakeMpesa, fixture, startDaemon, waitFor } from './support.mjs';

const QUERY = '/mpesa/stkpushquery/v1/query';
const PUSH = '/mpesa/stkpush/v1/processrequest';

function logger() {
  const lines = [];
  return { lines, warn: (line) => lines.push(line), info: (line) => lines.push(line) };
}

async function setUp(t, settings) {
  const provider = await fakeMpesa();
  const daemon = await startDaemon(provider, settings);
  const log = logger();
  const client = await connect({ url: daemon.url, reportToken: REPORT_TOKEN, logger: log });
  t.after(async () => {
    await client.close();
    await daemon.stop();
    await provider.close();
  });
  return { provider, daemon, client, log };
}

test('STK queries answered 500 500.001.1001 leave mpesa CLOSED and the app gets its Response', async (t) => {
  const { provider, daemon, client } = await setUp(t);
  provider.routes[QUERY] = { fixture: 'stk_query_pending', delayMs: 0 };
  const mpesa = client.breaker('mpesa');
  const sample = fixture('stk_query_pending');
  for (let i = 0; i < 6; i++) {
    const response = await mpesa.execute(() => fetch(provider.url + QUERY, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ CheckoutRequestID: 'ws_CO_20022018230142206' }),
    }));
    assert.equal(response.status, 500);
    assert.equal(response.bodyUsed, false, 'the body is the app\'s to read');
    assert.equal(await response.text(), sample.body, 'the app reads the whole answer itself');
  }
  // breakerd has judged all six (each one a caller outcome, counted apart).
  await waitFor(async () => (await callerOutcomes(daemon)) >= 6, 'breakerd to judge the six answers as the caller\'s');
  const stats = await daemon.get('/api/v1/circuit-breakers/mpesa');
  assert.equal(stats.state, 'CLOSED');
  assert.equal(mpesa.state, 'CLOSED');
  assert.equal(client.dropped, 0);
});

/** Reported answers breakerd judged a caller's outcome (not the provider's fault). */
async function callerOutcomes(daemon) {
  const text = await (await fetch(`${daemon.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('breakerd_caller_outcomes_total') && line.includes('service="mpesa"')) {
      total += Number(line.split(' ').at(-1));
    }
  }
  return total;
}

test('a fn slower than the service\'s timeout rejects with the seed\'s timeout error', async (t) => {
  const { client } = await setUp(t, { timeout: '"300ms"' });
  const mpesa = client.breaker('mpesa');
  assert.equal(mpesa.timeoutMs, 300, 'the timeout is the service\'s own, from alerts.toml');
  const started = Date.now();
  await assert.rejects(
    mpesa.execute(() => new Promise((done) => setTimeout(done, 2000, 'too late'))),
    (error) => {
      assert.equal(error.message, 'Circuit breaker mpesa timeout after 300ms');
      assert.equal(error.timeout, true);
      return true;
    },
  );
  assert.ok(Date.now() - started < 1500);
});

test('the seed\'s API: getAllStats, stats, events, fallback, arguments', async (t) => {
  const { provider, client } = await setUp(t);
  const mpesa = client.breaker('mpesa');
  assert.equal(await mpesa.execute(async (a, b) => a + b, 2, 3), 5, 'execute passes its arguments');
  const all = client.getAllStats();
  assert.deepEqual(Object.keys(all), ['mpesa']);
  assert.equal(all.mpesa.state, 'CLOSED');
  for (const key of ['failureCount', 'successCount', 'uptime']) assert.equal(typeof all.mpesa[key], 'number');
  assert.deepEqual(mpesa.stats, all.mpesa);
  assert.throws(() => client.breaker('nope'), /breakerd has no service nope; it has mpesa/);

  const events = [];
  for (const name of ['open', 'halfOpen', 'close']) mpesa.on(name, () => events.push(name));
  provider.routes[PUSH] = { fixture: 'stk_push_internal_server_error', delayMs: 0 };
  for (let i = 0; i < 3; i++) await mpesa.execute(() => fetch(provider.url + PUSH, { method: 'POST' }));
  await waitFor(() => mpesa.state === 'OPEN', 'the breaker to open');
  assert.deepEqual(events, ['open']);
  assert.match(client.getAllStats().mpesa.nextAttempt, /^\d{4}-\d\d-\d\dT/);

  let called = false;
  mpesa.fallback((phone, error) => ({ queued: phone, because: error.message }));
  const answer = await mpesa.execute(async () => {
    called = true;
  }, '254700000000');
  assert.equal(called, false);
  assert.deepEqual(answer, { queued: '254700000000', because: 'Circuit breaker mpesa is OPEN' });
});

test('with breakerd killed, calls go on against a local breaker; its state wins when it is back', async (t) => {
  const { daemon, client, log } = await setUp(t, { reset_timeout: '"1h"' });
  const mpesa = client.breaker('mpesa');
  await daemon.kill();
  await waitFor(() => !client.connected, 'the client to notice');
  assert.equal(log.lines.filter((line) => /unreachable/.test(line)).length, 1, 'logged once');

  let calls = 0;
  const failing = () => {
    calls += 1;
    return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
  };
  for (let i = 0; i < 3; i++) await assert.rejects(mpesa.execute(failing), /ECONNREFUSED/);
  assert.equal(mpesa.state, 'OPEN', 'the local breaker opened at the service\'s threshold (3)');
  await assert.rejects(mpesa.execute(failing), { message: 'Circuit breaker mpesa is OPEN', circuitBreakerOpen: true });
  assert.equal(calls, 3, 'the open local breaker did not call fn');
  await waitFor(() => client.dropped >= 3, 'the unsendable reports to be dropped and counted');
  assert.equal(log.lines.filter((line) => /unreachable/.test(line)).length, 1, 'still logged once');

  await daemon.start();
  await waitFor(() => client.connected, 'the client to resynchronise');
  assert.equal(mpesa.state, 'CLOSED', 'breakerd\'s state wins');
  assert.equal(await mpesa.execute(async () => 'through'), 'through');
  assert.ok(log.lines.some((line) => /is back/.test(line)));
});

test('connect fails clearly when breakerd is not there', async () => {
  await assert.rejects(
    connect({ url: 'http://127.0.0.1:9', reportToken: REPORT_TOKEN, connectTimeoutMs: 300, logger: logger() }),
    /did not send its breakers within 300 ms/,
  );
});

test('the report queue is bounded and what it drops is counted; calls never wait for it', async (t) => {
  const provider = await fakeMpesa();
  const daemon = await startDaemon(provider);
  const client = await connect({ url: daemon.url, reportToken: REPORT_TOKEN, maxQueue: 2, batchSize: 1000, batchMs: 50, logger: logger() });
  t.after(async () => {
    await client.close();
    await daemon.stop();
    await provider.close();
  });
  const mpesa = client.breaker('mpesa');
  await waitFor(async () => (await daemon.get('/api/v1/circuit-breakers/mpesa')).lastCheck, 'the first check');
  const before = (await daemon.get('/api/v1/circuit-breakers/mpesa')).successCount;
  const results = await Promise.all([1, 2, 3, 4, 5].map((n) => mpesa.execute(async () => n)));
  assert.deepEqual(results, [1, 2, 3, 4, 5], 'every call went through');
  assert.equal(client.dropped, 3, 'two queued, three dropped and counted');
  await waitFor(async () => (await daemon.get('/api/v1/circuit-breakers/mpesa')).successCount === before + 2, 'the two queued to be reported');
});
