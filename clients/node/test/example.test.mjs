// The example (examples/stk-push.mjs) against breakerd and a fake Daraja: an STK push through
// the client, the seed's stats endpoint, and the seed's open answer.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { handlers, serve } from '../examples/stk-push.mjs';
import { connect } from '../src/index.js';
import { REPORT_TOKEN, fakeMpesa, startDaemon, waitFor } from './support.mjs';

test('the example takes an STK push through the client and serves getAllStats', async (t) => {
  const provider = await fakeMpesa();
  const daemon = await startDaemon(provider);
  const breakerd = await connect({ url: daemon.url, reportToken: REPORT_TOKEN, logger: { warn() {}, info() {} } });
  const server = await serve(handlers({ breakerd, darajaUrl: provider.url, accessToken: 'token' }), 0);
  t.after(async () => {
    server.close();
    await breakerd.close();
    await daemon.stop();
    await provider.close();
  });
  const app = `http://127.0.0.1:${server.address().port}`;
  const push = () => fetch(`${app}/api/v1/payments/stk-push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ phone: '254708374149', amount: 1, accountReference: 'A-12' }),
  });

  let response = await push();
  assert.equal(response.status, 200);
  const accepted = await response.json();
  assert.equal(accepted.ResponseCode, '0');
  assert.equal(accepted.CheckoutRequestID, 'ws_CO_1007202409152617172396192');

  const stats = await (await fetch(`${app}/api/v1/circuit-breakers`)).json();
  assert.equal(stats.mpesa.state, 'CLOSED');

  await daemon.admin('/api/v1/circuit-breakers/mpesa/force-open');
  await waitFor(() => breakerd.breaker('mpesa').state === 'FORCED_OPEN', 'the client to follow');
  const before = provider.count('/mpesa/stkpush/v1/processrequest');
  response = await push();
  assert.equal(response.status, 503);
  assert.deepEqual(await response.json(), { success: false, message: 'Circuit breaker mpesa is OPEN', circuitBreakerOpen: true });
  assert.equal(provider.count('/mpesa/stkpush/v1/processrequest'), before);
  const open = await (await fetch(`${app}/api/v1/circuit-breakers`)).json();
  assert.equal(open.mpesa.state, 'FORCED_OPEN');
});
