// What the client tells breakerd of an answer: a fetch Response, an axios response or error
// (shaped as axios makes them; axios is no dependency), and a thrown error's reason.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { answerOf, answerOfError, bodyStart, reasonOf } from '../src/answer.js';
import { fixture } from './support.mjs';

const pending = fixture('stk_query_pending');

test('an axios response and an axios error carry their answer', () => {
  const config = { method: 'post', url: '/mpesa/stkpushquery/v1/query', baseURL: 'https://sandbox.safaricom.co.ke' };
  const response = { status: 500, headers: { 'content-type': 'application/json' }, data: JSON.parse(pending.body), config };
  const answer = answerOf(response);
  assert.equal(answer.method, 'POST');
  assert.equal(answer.path, '/mpesa/stkpushquery/v1/query');
  assert.equal(answer.status, 500);
  assert.deepEqual(answer.headers, { 'content-type': 'application/json' });
  assert.deepEqual(JSON.parse(answer.body), JSON.parse(pending.body));
  const error = Object.assign(new Error('Request failed with status code 500'), { isAxiosError: true, config, response });
  assert.deepEqual(answerOfError(error), answer);
  assert.equal(answerOf({ status: 200 }), null, 'a plain object is no answer');
  assert.equal(answerOf('text'), null);
});

test('a fetch Response is read from a clone, never consumed', async () => {
  const response = new Response(pending.body, { status: 500, headers: { 'content-type': 'application/json', 'retry-after': '30' } });
  Object.defineProperty(response, 'url', { value: 'https://sandbox.safaricom.co.ke/mpesa/stkpushquery/v1/query?x=1' });
  const answer = answerOf(response);
  assert.equal(answer.path, '/mpesa/stkpushquery/v1/query?x=1');
  assert.deepEqual(answer.headers, { 'retry-after': '30', 'content-type': 'application/json' });
  assert.equal(await bodyStart(answer.body), pending.body);
  assert.equal(response.bodyUsed, false);
  assert.equal(await response.text(), pending.body);
});

test('only the start of a long body is read', async () => {
  const long = 'x'.repeat(100 * 1024);
  assert.equal((await bodyStart(new Response(long))).length, 8 * 1024);
});

test('a thrown error says why in the outcome API\'s words', () => {
  const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
  assert.equal(reasonOf(refused), 'connect');
  assert.equal(reasonOf(Object.assign(new Error('x'), { code: 'ENOTFOUND' })), 'dns');
  assert.equal(reasonOf(Object.assign(new Error('x'), { code: 'ECONNRESET' })), 'reset');
  assert.equal(reasonOf(Object.assign(new Error('x'), { code: 'CERT_HAS_EXPIRED' })), 'tls');
  assert.equal(reasonOf(new Error('anything else')), 'reported');
});
