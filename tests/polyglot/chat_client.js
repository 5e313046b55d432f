#!/usr/bin/env node
// Polyglot check: a Node.js client of routerpc.v1.RouterService built straight from the repo's
// .proto files (no generated code), to prove the contract works outside Python.
//
// Usage: node tests/polyglot/chat_client.js HOST:PORT
//
// Calls Chat, then StreamChat, with the same request (model "openai/gpt-4o", one user message
// "Hello from Node", provider.quantizations [QUANTIZATION_FP8]). Writes JSON Lines to stdout:
//
//   {"rpc":"Chat","response":{...ChatResponse...}}
//   {"rpc":"StreamChat","index":0,"text":"...","provider":"..."}   one line per streamed chunk
//   {"rpc":"StreamChat","done":true,"chunks":N,"text":"<all chunk texts joined>"}
//
// Exits 0 on success; on any failure writes the error to stderr and exits non-zero
// (1 for an RPC or loading error, 2 for bad usage).
//
// Loader notes: @grpc/proto-loader only needs the repo's proto/ directory in includeDirs. The
// buf.validate field and message options (including aggregate ones such as
// `(buf.validate.field).string = {in: [...]}` and CEL rules) parse fine with protobufjs 7, and
// google/protobuf/{struct,descriptor,duration,...}.proto resolve to the well-known types that
// protobufjs bundles, so no extra include directory is needed. keepCase keeps the proto field
// names (snake_case) in the JSON we print, matching the .proto files; enums are printed by name,
// 64-bit integers as decimal strings. (The loader also works without keepCase; only the printed
// field names would change to camelCase.)

'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const SERVICE_PROTO = 'routerpc/v1/router_service.proto';
const DEADLINE_MS = Number(process.env.CHAT_CLIENT_DEADLINE_MS || 30000);

const LOADER_OPTIONS = {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
};

function chatRequest() {
  return {
    model: 'openai/gpt-4o',
    messages: [{ role: 'ROLE_USER', text: 'Hello from Node' }],
    provider: { quantizations: ['QUANTIZATION_FP8'] },
  };
}

function deadline() {
  return new Date(Date.now() + DEADLINE_MS);
}

function describe(rpc, err) {
  if (err && typeof err.code === 'number') {
    const name = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code) || err.code;
    return `${rpc} failed: ${name}: ${err.details || err.message}`;
  }
  return `${rpc} failed: ${err && err.stack ? err.stack : err}`;
}

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function chat(client) {
  return new Promise((resolve, reject) => {
    client.Chat(chatRequest(), { deadline: deadline() }, (err, response) => {
      if (err) {
        reject(new Error(describe('Chat', err)));
        return;
      }
      emit({ rpc: 'Chat', response });
      resolve(response);
    });
  });
}

function chunkText(chunk) {
  return (chunk.choices || [])
    .map((choice) => (choice.delta && choice.delta.content) || '')
    .join('');
}

function streamChat(client) {
  return new Promise((resolve, reject) => {
    const call = client.StreamChat({ request: chatRequest() }, { deadline: deadline() });
    let count = 0;
    let all = '';
    let settled = false;
    call.on('data', (chunk) => {
      const text = chunkText(chunk);
      emit({ rpc: 'StreamChat', index: count, text, provider: chunk.provider });
      count += 1;
      all += text;
    });
    call.on('error', (err) => {
      if (!settled) {
        settled = true;
        reject(new Error(describe('StreamChat', err)));
      }
    });
    call.on('end', () => {
      // 'end' comes after a clean OK status; an error status arrives as 'error' instead.
      if (!settled) {
        settled = true;
        emit({ rpc: 'StreamChat', done: true, chunks: count, text: all });
        resolve(all);
      }
    });
  });
}

async function main(argv) {
  if (argv.length !== 1 || !argv[0]) {
    process.stderr.write('usage: node chat_client.js HOST:PORT\n');
    return 2;
  }
  const target = argv[0];
  const definition = protoLoader.loadSync(SERVICE_PROTO, LOADER_OPTIONS);
  const loaded = grpc.loadPackageDefinition(definition);
  const RouterService = loaded.routerpc.v1.RouterService;
  const client = new RouterService(target, grpc.credentials.createInsecure());
  try {
    await chat(client);
    await streamChat(client);
  } finally {
    client.close();
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`chat_client: ${err && err.message ? err.message : err}\n`);
    process.exitCode = 1;
  },
);
