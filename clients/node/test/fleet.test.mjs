// Two application processes against one breakerd: one breaker state shared by both.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { connect } from '../src/index.js';
import { REPORT_TOKEN, fakeMpesa, fixture, startDaemon, startWorker, waitFor } from './support.mjs';

const PUSH = '/mpesa/stkpush/v1/processrequest';
const quiet = { warn() {}, info() {} };

/** Process A's STK pushes answered 500.003.1001 (a provider fault) until breakerd opens. */
async function failUntilOpen(a, provider) {
  provider.routes[PUSH] = { fixture: 'stk_push_internal_server_error', delayMs: 0 };
  const breaker = a.breaker('mpesa');
  for (let i = 0; i < 3; i++) {
    const response = await breaker.execute(() => fetch(provider.url + PUSH, { method: 'POST', body: '{}' }));
    assert.equal(response.status, 500, 'the app gets the provider\'s answer itself');
  }
  await waitFor(() => breaker.state === 'OPEN', 'breakerd to judge the answers and open');
}

/**
 * A fake Daraja, breakerd in front of it with `settings`, process A (this one) and process B (a
 * worker), both connected; all stopped when test `t` ends. B's reply to connecting comes back too.
 */
async function fleet(t, settings) {
  const provider = await fakeMpesa();
  const daemon = await startDaemon(provider, settings);
  const b = startWorker();
  t.after(async () => {
    await b.stop();
    await daemon.stop();
    await provider.close();
  });
  const a = await connect({ url: daemon.url, reportToken: REPORT_TOKEN, logger: quiet });
  t.after(() => a.close());
  const joined = await b.ask({ cmd: 'connect', url: daemon.url, token: REPORT_TOKEN });
  return { provider, daemon, a, b, joined };
}

test('A\'s failures open the breaker and B rejects locally within 200 ms; a reset reaches both', async (t) => {
  const { provider, daemon, a, b, joined } = await fleet(t);
  assert.deepEqual(joined, { state: 'CLOSED', id: 0 });

  await failUntilOpen(a, provider);
  const opened = await waitFor(() => daemon.transitionAt('OPEN'), 'breakerd to record the opening');
  const seen = await waitFor(() => b.events.find((event) => event.event === 'open'), 'B to see the breaker open');
  assert.ok(seen.at - opened <= 200, `B saw OPEN ${seen.at - opened} ms after breakerd's transition`);

  const before = provider.count(PUSH);
  const rejected = await b.ask({ cmd: 'execute', url: provider.url + PUSH });
  assert.equal(rejected.called, false, 'B\'s fn is not called');
  assert.deepEqual(rejected.error, { message: 'Circuit breaker mpesa is OPEN', circuitBreakerOpen: true });
  assert.equal(provider.count(PUSH), before, 'nothing reached the provider');

  const reset = await daemon.admin('/api/v1/circuit-breakers/mpesa/reset');
  assert.equal(reset.status, 200);
  const closed = await waitFor(() => daemon.transitionAt('CLOSED'), 'breakerd to record the reset');
  const aClosed = await new Promise((done) => {
    if (a.breaker('mpesa').state === 'CLOSED') done(Date.now());
    else a.breaker('mpesa').once('close', () => done(Date.now()));
  });
  const bClosed = await waitFor(() => b.events.find((event) => event.event === 'close'), 'B to see the reset');
  assert.ok(aClosed - closed <= 200, `A saw the reset ${aClosed - closed} ms after it`);
  assert.ok(bClosed.at - closed <= 200, `B saw the reset ${bClosed.at - closed} ms after it`);
  provider.routes[PUSH] = { fixture: 'stk_push_success', delayMs: 0 };
  const through = await b.ask({ cmd: 'execute', url: provider.url + PUSH });
  assert.equal(through.called, true);
  assert.equal(through.status, 200);
});

test('in half-open, two processes together send exactly the trial calls the breaker allows', async (t) => {
  const { provider, daemon, a, b } = await fleet(t, {
    reset_timeout: '"1s"',
    half_open_max_calls: 3,
    success_threshold: 3,
  });
  const breaker = a.breaker('mpesa');
  assert.equal(breaker.settings.halfOpenMaxCalls, 3, 'the thresholds come from alerts.toml');

  await failUntilOpen(a, provider);
  // Trials take a while, so every process asks while the first trials still run.
  provider.routes[PUSH] = { fixture: 'stk_push_success', delayMs: 400 };
  provider.routes['/oauth/v1/generate'].delayMs = 400;
  await new Promise((done) => breaker.once('halfOpen', done));
  const since = (await daemon.transitionAt('HALF_OPEN')) - 5;
  const calls = [];
  for (let i = 0; i < 4; i++) {
    calls.push(b.ask({ cmd: 'execute', url: provider.url + PUSH }));
    calls.push(
      breaker.execute(() => fetch(provider.url + PUSH, { method: 'POST', body: '{}' })).then(
        (response) => ({ called: true, status: response.status }),
        (error) => ({ called: false, error: { message: error.message, circuitBreakerOpen: error.circuitBreakerOpen } }),
      ),
    );
  }
  const results = await Promise.all(calls);
  const ran = results.filter((result) => result.called).length;
  // breakerd's own check runs a trial too as the breaker half-opens: it is one of the fleet.
  const checks = provider.count('/oauth/v1/generate', since);
  assert.equal(ran + checks, 3, `${ran} client trials and ${checks} check trials: ${JSON.stringify(results)}`);
  assert.equal(provider.count(PUSH, since), ran, 'each trial reached the provider once');
  for (const result of results.filter((result) => !result.called)) {
    assert.equal(result.error.circuitBreakerOpen, true);
  }
  await waitFor(() => breaker.state === 'CLOSED', 'the successful trials to close the breaker');
  assert.equal((await daemon.get('/api/v1/circuit-breakers/mpesa')).state, 'CLOSED');
  assert.ok(fixture('stk_push_success').status === 200);
});
