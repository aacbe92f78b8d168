// kvclient-sdk.mjs: the Azure SDK side of bench/bench_kvclient.c, the
// client benchmark of issue 5: the official Azure SDK for JavaScript,
// @azure/keyvault-keys, from tests/sdk/node_modules (`npm ci --prefix
// tests/sdk`, exactly as tests/sdk/package-lock.json pins it).
//
//   node bench/kvclient-sdk.mjs --prefix P --keys N [--concurrency N] [--page N]
//
// Environment: KEYBRIDGE_URL, KEYBRIDGE_TOKEN_FILE (a bearer token), and the
// dev CA trusted through NODE_EXTRA_CA_CERTS: TLS is verified, never switched
// off.  KB_SDK_DIR overrides where the SDK is installed (default tests/sdk).
//
// The keys exist already (bench_kvclient makes them, AES-256, kty oct-HSM):
// their names are P followed by the index on 5 digits.  One KeyClient, service version 7.6,
// no retries (a retry would make the request counts differ from kv-client's).
// The program is driven over stdin, one command a line, so that
// bench_kvclient can alternate slices of work with its own and bracket each
// with the agent's CPU time:
//
//   warm N W      each of W workers does N getKey of key 0, W at once
//                 ("warm 1 1" meets the bearer challenge, then "warm N
//                 --concurrency" fills the connection pool)
//   get FROM TO   getKey of keys FROM..TO-1, --concurrency in flight
//   list W        W walks of listPropertiesOfKeys().byPage({maxPageSize:
//                 --page}) at once, each over the whole vault
//   quit
//
// Answers on stdout: "skip REASON" (no SDK; exit 0), then "ready {sdk,
// node}", then one "done {JSON}" per command: ops (gets, or items listed),
// secs, requests (on the wire, counted by a pipeline policy), challenges
// (401 answers among them), connects (TLS handshakes: calls of
// tls.connect), secure (secureConnect events), cpuMs
// (this process), pages, items, ours (items whose name starts with P), bad
// (answers that did not check).  Errors on stderr, exit code 1.

import readline from 'node:readline';

import { fileCredential, loadKeyvaultKeys, tlsCount } from './sdkcommon.mjs';

const opt = { prefix: null, keys: 0, concurrency: 4, page: 25 };
{
  const a = process.argv.slice(2);
  const num = (i) => {
    const v = Number(a[i]);
    if (!Number.isInteger(v) || v < 1)
      usage();
    return v;
  };
  for (let i = 0; i < a.length; i++) {
    switch (a[i]) {
      case '--prefix': opt.prefix = a[++i] ?? ''; break;
      case '--keys': opt.keys = num(++i); break;
      case '--concurrency': opt.concurrency = num(++i); break;
      case '--page': opt.page = num(++i); break;
      default: usage();
    }
  }
  if (!/^[0-9a-zA-Z-]{1,40}$/.test(opt.prefix ?? '') || opt.keys < 1)
    usage();
}

function usage() {
  console.error('usage: kvclient-sdk.mjs --prefix P --keys N [--concurrency N] [--page N]');
  process.exit(2);
}

const url = process.env.KEYBRIDGE_URL;
const tokenFile = process.env.KEYBRIDGE_TOKEN_FILE;
if (!url || !tokenFile) {
  console.error('kvclient-sdk.mjs: KEYBRIDGE_URL and KEYBRIDGE_TOKEN_FILE must be set');
  process.exit(2);
}

const { mod: { KeyClient }, version: sdkVersion } = loadKeyvaultKeys();

const credential = fileCredential(tokenFile);

// Every request that reaches the wire, challenges included.
let requests = 0;
let challenges = 0;
let failures = 0;
const counter = {
  name: 'kbBenchCounter',
  async sendRequest(request, next) {
    requests++;
    const response = await next(request);
    if (response.status === 401)
      challenges++;
    else if (response.status !== 200)
      failures++;
    return response;
  },
};

const client = new KeyClient(url, credential, {
  serviceVersion: '7.6',
  // keybridge answers for https://127.0.0.1:PORT, not *.vault.azure.net
  disableChallengeResourceVerification: true,
  retryOptions: { maxRetries: 0 },
  additionalPolicies: [{ policy: counter, position: 'perRetry' }],
});

const keyName = (i) => `${opt.prefix}${String(i).padStart(5, '0')}`;

// n workers pulling indexes from..to-1 off a shared counter.
async function pool(from, to, n, op) {
  let next = from;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= to)
        return;
      await op(i);
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
}

async function getOne(i, acc) {
  const k = await client.getKey(keyName(i));
  if (k.name !== keyName(i) || !k.properties.version || k.key?.kty !== 'oct-HSM'
      || !(k.properties.createdOn instanceof Date))
    acc.bad++;
  acc.ops++;
}

async function walk(acc) {
  for await (const page of client.listPropertiesOfKeys().byPage({ maxPageSize: opt.page })) {
    acc.pages++;
    for (const p of page) {
      acc.items++;
      acc.ops++;
      if (p.name.startsWith(opt.prefix))
        acc.ours++;
      // a list item's id has no version (KeyItem)
      if (!p.id || !(p.createdOn instanceof Date))
        acc.bad++;
    }
  }
}

async function command(words) {
  const acc = { ops: 0, pages: 0, items: 0, ours: 0, bad: 0 };
  const r0 = requests, c0 = tlsCount.connects, s0 = tlsCount.secure, f0 = failures, h0 = challenges;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const n = (w) => {
    const v = Number(w);
    if (!Number.isInteger(v) || v < 0)
      throw new Error(`bad command: ${words.join(' ')}`);
    return v;
  };

  switch (words[0]) {
    case 'warm': {
      const reps = n(words[1]);
      await Promise.all(Array.from({ length: n(words[2]) }, async () => {
        for (let j = 0; j < reps; j++)
          await getOne(0, acc);
      }));
      break;
    }
    case 'get':
      await pool(n(words[1]), Math.min(n(words[2]), opt.keys), opt.concurrency, (i) => getOne(i, acc));
      break;
    case 'list':
      await Promise.all(Array.from({ length: n(words[1]) }, () => walk(acc)));
      break;
    default:
      throw new Error(`unknown command: ${words.join(' ')}`);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return {
    ...acc, secs, requests: requests - r0, connects: tlsCount.connects - c0, secure: tlsCount.secure - s0,
    failures: failures - f0, challenges: challenges - h0, cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

async function main() {
  console.log(`ready ${JSON.stringify({ sdk: sdkVersion, node: process.version })}`);
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'quit' || words[0] === '')
      break;
    console.log(`done ${JSON.stringify(await command(words))}`);
  }
  lines.close();
  process.stdin.destroy();
}

main().catch((e) => {
  const why = e?.statusCode ? `${e.name} ${e.statusCode} ${e.code ?? ''}: ${e.message}` : (e?.stack ?? e);
  console.error(`kvclient-sdk: ${why}`);
  process.exit(1);
});
