// The errors a protected call rejects with, worded as the seed words them.

/** Makes an Error without capturing a stack: an open breaker's rejection says where it came
 * from in its message, and a stack would cost more than the rest of the rejection. */
function bare(message) {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const error = new Error(message);
  Error.stackTraceLimit = limit;
  return error;
}

/** "Circuit breaker mpesa is OPEN", with `circuitBreakerOpen: true`. */
export function openError(service, state = 'OPEN', nextAttempt = null) {
  const error = bare(`Circuit breaker ${service} is ${state === 'HALF_OPEN' ? 'HALF_OPEN' : 'OPEN'}`);
  error.circuitBreakerOpen = true;
  error.service = service;
  error.state = state;
  if (nextAttempt) error.nextAttempt = nextAttempt;
  return error;
}

/** "Circuit breaker mpesa timeout after 30000ms", with `timeout: true`. */
export function timeoutError(service, timeoutMs) {
  const error = new Error(`Circuit breaker ${service} timeout after ${timeoutMs}ms`);
  error.timeout = true;
  error.service = service;
  return error;
}
