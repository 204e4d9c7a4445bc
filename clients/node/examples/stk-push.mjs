// The seed's M-Pesa STK push and stats endpoint, with @breakerd/client in place of the seed's
// in-process circuitBreaker.js. Express-style handlers `(req, res)`; run directly, they are
// served by node:http (no dependencies):
//
//   BREAKERD_URL=http://127.0.0.1:9477 BREAKERD_REPORT_TOKEN=... \
//   DARAJA_URL=https://sandbox.safaricom.co.ke DARAJA_TOKEN=... node examples/stk-push.mjs
//
// With Express: app.post('/api/v1/payments/stk-push', express.json(), handlers.stkPush) and
// app.get('/api/v1/circuit-breakers', handlers.circuitBreakers).

import { createServer } from 'node:http';

import { connect } from '../src/index.js';

/** The handlers, given a connected client and Daraja's base URL and token. */
export function handlers({ breakerd, darajaUrl, accessToken }) {
  const mpesa = breakerd.breaker('mpesa');

  return {
    /** POST /api/v1/payments/stk-push `{ phone, amount, accountReference }`. */
    async stkPush(req, res) {
      const { phone, amount, accountReference } = req.body ?? {};
      try {
        // Rejected at once while breakerd holds mpesa open; otherwise the answer goes to
        // breakerd (in a batch, off this request's path) to be judged by Daraja's rules.
        const response = await mpesa.execute(() => fetch(`${darajaUrl}/mpesa/stkpush/v1/processrequest`, {
          method: 'POST',
          headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            BusinessShortCode: '174379',
            TransactionType: 'CustomerPayBillOnline',
            Amount: amount,
            PartyA: phone,
            PartyB: '174379',
            PhoneNumber: phone,
            CallBackURL: 'https://example.com/api/v1/payments/mpesa/callback',
            AccountReference: accountReference,
            TransactionDesc: 'Rent',
          }),
        }));
        const answer = await response.json();
        res.status(response.ok ? 200 : 502).json({ success: response.ok, ...answer });
      } catch (error) {
        if (error.circuitBreakerOpen || error.timeout) {
          // The seed's answers: "Circuit breaker mpesa is OPEN", "... timeout after 30000ms".
          res.status(503).json({ success: false, message: error.message, circuitBreakerOpen: error.circuitBreakerOpen, timeout: error.timeout });
        } else {
          res.status(502).json({ success: false, message: 'M-Pesa could not be reached' });
        }
      }
    },

    /** GET /api/v1/circuit-breakers: the seed's stats, from the fleet-wide breakers. */
    circuitBreakers(req, res) {
      res.status(200).json(breakerd.getAllStats());
    },
  };
}

/** Just enough of Express's `res` on node:http's response. */
function expressish(res) {
  res.status = (code) => {
    res.statusCode = code;
    return res;
  };
  res.json = (value) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(value));
  };
  return res;
}

/** Serves the handlers on `port`; resolves to the server. */
export async function serve(app, port = 3000) {
  const server = createServer(async (req, res) => {
    expressish(res);
    let text = '';
    for await (const chunk of req) text += chunk;
    try {
      req.body = text ? JSON.parse(text) : undefined;
    } catch {
      return res.status(400).json({ success: false, message: 'malformed JSON' });
    }
    if (req.method === 'POST' && req.url === '/api/v1/payments/stk-push') return app.stkPush(req, res);
    if (req.method === 'GET' && req.url === '/api/v1/circuit-breakers') return app.circuitBreakers(req, res);
    res.status(404).json({ success: false, message: 'not found' });
  });
  await new Promise((done) => server.listen(port, '127.0.0.1', done));
  return server;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const breakerd = await connect({ url: process.env.BREAKERD_URL ?? 'http://127.0.0.1:9477', reportToken: process.env.BREAKERD_REPORT_TOKEN });
  const server = await serve(handlers({
    breakerd,
    darajaUrl: process.env.DARAJA_URL ?? 'https://sandbox.safaricom.co.ke',
    accessToken: process.env.DARAJA_TOKEN,
  }), Number(process.env.PORT ?? 3000));
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
  const stop = async () => {
    server.close();
    await breakerd.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
