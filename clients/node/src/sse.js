// Server-sent events read from a fetch Response body: each event's name and data.

/** The events of `body` (a web ReadableStream of bytes), as `{ event, data }`; `onBytes` is
 * told whenever bytes arrive (a keep-alive comment counts). */
export async function* events(body, onBytes = () => {}) {
  const decoder = new TextDecoder();
  let buffered = '';
  let name = 'message';
  let data = [];
  for await (const chunk of body) {
    onBytes();
    buffered += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffered.indexOf('\n')) >= 0) {
      let line = buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length > 0) yield { event: name, data: data.join('\n') };
        name = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        // A comment: the server's keep-alive.
      } else {
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') name = value;
        else if (field === 'data') data.push(value);
      }
    }
    if (buffered.length > 1024 * 1024) throw new Error('an event longer than 1 MiB');
  }
}
