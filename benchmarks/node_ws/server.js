// A minimal `ws` broadcast server speaking the part of cascade's hub protocol that
// benchmarks/hub_vs_node.py uses: /ws/{channel} subscribes, `connected` on open, the ops
// publish / ping / subscribe / unsubscribe, events as {"type":"event",...} frames.
// One JSON.stringify per broadcast, one frame per subscriber, no batching: what a minimal
// ws server does. `ws` is found through NODE_PATH (installed outside the repository).
//
//   node server.js --port 8000 [--host 127.0.0.1] [--channels a,b,c]
'use strict';

const http = require('http');
const crypto = require('crypto');
const { WebSocketServer, WebSocket } = require('ws');

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const host = option('--host', '127.0.0.1');
const port = Number(option('--port', '8000'));
const names = option('--channels', 'consciousness-stream,ai-collaborations,cascade-events');
const channels = new Map(names.split(',').filter(Boolean).map((name) => [name, new Set()]));
let sequence = 0;

const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', connections: wss.clients.size }));
  } else {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
  }
});
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 1 << 20 });

function reply(ws, message) {
  ws.send(JSON.stringify(message));
}

function listing(ws) {
  return [...ws.channels];
}

function publish(channel, data) {
  const id = `${Date.now()}-${++sequence}`;
  const frame = JSON.stringify({ type: 'event', channel, id, ts: Date.now() / 1000, data });
  for (const client of channels.get(channel)) {
    if (client.readyState === WebSocket.OPEN) client.send(frame);
  }
  return id;
}

function handle(ws, text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    return reply(ws, { type: 'error', error: 'malformed JSON' });
  }
  const op = message && message.op;
  if (op === 'ping') return reply(ws, { type: 'pong', timestamp: Date.now() / 1000 });
  const channel = message.channel;
  if (op !== 'publish' && op !== 'subscribe' && op !== 'unsubscribe') {
    return reply(ws, { type: 'error', error: `unknown op: ${op}` });
  }
  if (!channels.has(channel)) return reply(ws, { type: 'error', error: `unknown channel: ${channel}` });
  if (op === 'publish') {
    const id = publish(channel, message.data === undefined ? null : message.data);
    return reply(ws, { type: 'published', channel, id });
  }
  if (op === 'subscribe') {
    ws.channels.add(channel);
    channels.get(channel).add(ws);
  } else {
    ws.channels.delete(channel);
    channels.get(channel).delete(ws);
  }
  return reply(ws, { type: `${op}d`, channel, channels: listing(ws) });
}

wss.on('connection', (ws, req) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  const match = /^\/ws(?:\/([^/]+))?$/.exec(path);
  const channel = match && match[1] !== undefined ? decodeURIComponent(match[1]) : null;
  if (!match || (channel !== null && !channels.has(channel))) {
    ws.close(4000, 'unknown channel');
    return;
  }
  ws.channels = new Set();
  if (channel !== null) {
    ws.channels.add(channel);
    channels.get(channel).add(ws);
  }
  reply(ws, { type: 'connected', client_id: crypto.randomUUID(), channels: listing(ws), timestamp: Date.now() / 1000 });
  ws.on('message', (data, isBinary) => handle(ws, isBinary ? data : data.toString()));
  ws.on('close', () => {
    for (const name of ws.channels) channels.get(name).delete(ws);
  });
  ws.on('error', () => {});
});

function stop() {
  for (const ws of wss.clients) ws.close(1001, 'going away');
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

server.listen(port, host, () => {
  process.stderr.write(`node ws server on ws://${host}:${port}/ws/{channel}\n`);
});
