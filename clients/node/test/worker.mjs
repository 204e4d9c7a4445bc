// A second application process for the tests: its own client, driven over IPC by the test.
// Breaker events go to the test as they happen, with the time they happened here.

import { connect } from '../src/index.js';

let client = null;

function send(message) {
  process.send(message);
}

async function run(command) {
  switch (command.cmd) {
    case 'connect': {
      client = await connect({ url: command.url, reportToken: command.token, logger: { warn() {}, info() {} } });
      const breaker = client.breaker('mpesa');
      for (const event of ['open', 'halfOpen', 'close']) {
        breaker.on(event, () => send({ event, at: Date.now() }));
      }
      return { state: breaker.state };
    }
    case 'execute': {
      // fn fetches `url` (a fake provider's path); `called` says whether fn ran.
      let called = false;
      try {
        const response = await client.breaker('mpesa').execute(async () => {
          called = true;
          return fetch(command.url, { method: 'POST', body: '{}' });
        });
        return { called, status: response.status, body: await response.text() };
      } catch (error) {
        return { called, error: { message: error.message, circuitBreakerOpen: error.circuitBreakerOpen === true } };
      }
    }
    case 'stats':
      return { stats: client.getAllStats(), connected: client.connected, dropped: client.dropped };
    case 'exit':
      await client?.close();
      process.exit(0);
      return {};
    default:
      return { error: { message: `unknown command ${command.cmd}` } };
  }
}

process.on('message', (command) => {
  run(command).then(
    (answer) => send({ ...answer, id: command.id }),
    (error) => send({ id: command.id, error: { message: String(error?.message || error) } }),
  );
});
