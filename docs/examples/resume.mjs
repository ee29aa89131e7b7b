// A client of a resumable session: it opens a session, subscribes to the
// topics given on the command line, prints every notification as one JSON
// line, and when the connection drops it reconnects and resumes, so that it
// receives what it missed once and in order.
//
//   node resume.mjs ws://127.0.0.1:8000/ws?session news
//
// In a browser, the same code runs without the first and last lines that read
// process.argv. (Node.js 22 has WebSocket; Node.js 20 needs
// --experimental-websocket.)

const [url = 'ws://127.0.0.1:8000/ws?session', ...topics] = process.argv.slice(2);

let session = null; // { client_id, token } once the server gave us one
const positions = new Map(); // stream name → its last position we received
let delay = 100; // reconnect backoff, in milliseconds

function connect() {
  const ws = new WebSocket(url);
  ws.onopen = () => {
    // A resume sends the last position of every stream; a new session sends nothing.
    const params = session ? { ...session, positions: [...positions.values()] } : {};
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'rpc.session', params, id: 'session' }));
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.id === 'session') return opened(ws, message);
    if (message.id === 'subscribe') {
      remember(message.result.streams);
      return console.log(JSON.stringify({ event: 'subscribed', topics: message.result.subscribed }));
    }
    if (message.position) {
      positions.set(message.position.stream, message.position);
      console.log(JSON.stringify({ method: message.method, params: message.params, position: message.position }));
    }
  };
  ws.onclose = () => {
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 5000);
  };
}

function opened(ws, answer) {
  if (answer.error) {
    // -32005: the session ended (or the server lost it): start a new one.
    console.log(JSON.stringify({ event: 'session lost', error: answer.error }));
    session = null;
    positions.clear();
    ws.close();
    return;
  }
  delay = 100;
  const result = answer.result;
  if (result.resumed) {
    remember(result.streams);
    // What could not be recovered is gone for good: refresh from the source.
    const lost = result.streams.filter((stream) => !stream.recovered).map((stream) => stream.stream);
    console.log(JSON.stringify({ event: 'resumed', client_id: result.client_id, lost }));
    return;
  }
  session = { client_id: result.client_id, token: result.token };
  remember(result.streams);
  console.log(JSON.stringify({ event: 'session', client_id: result.client_id }));
  if (topics.length > 0) {
    ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'rpc.subscribe', params: { topics }, id: 'subscribe' }));
  }
}

function remember(streams) {
  for (const { stream, epoch, offset } of streams) positions.set(stream, { stream, epoch, offset });
}

connect();
