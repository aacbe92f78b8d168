// https-sdk.mjs: the HTTPS benchmark's workload (bench/bench_https.c) driven
// by the official Azure SDK for JavaScript, @azure/keyvault-keys, taken from
// tests/sdk/node_modules (`npm ci --prefix tests/sdk`).
//
//   node bench/https-sdk.mjs [--keys N] [--gets N] [--signs N] [--rsa-keys N]
//                            [--concurrency N] [--prefix P] [--sync]
//
// Environment: KEYBRIDGE_URL, KEYBRIDGE_TOKEN_FILE (a bearer token), and the
// dev CA trusted through NODE_EXTRA_CA_CERTS: TLS is verified, never switched
// off.  KB_SDK_DIR overrides where the SDK is installed (default tests/sdk).
//
// Workload, as the C client's: --rsa-keys RSA-2048 keys (createRsaKey, not
// timed); then the phases "create" (createEcKey P-256, --keys keys), "get"
// (getKey, each key --gets times), "sign-rs256" and "sign-es256"
// (CryptographyClient.sign over --signs SHA-256 digests of "kb-bench-I",
// round-robin over the RSA keys and the first --rsa-keys EC keys), with
// --concurrency operations in flight.
//
// CryptographyClient is made from the KeyVaultKey, the SDK's usual "hybrid"
// mode: it has the public key, but sign() has no local provider and goes to
// the service.  A pipeline policy counts the sign requests on the wire to
// prove it (signRequests must equal signCalls).  The first signature on each
// key is verified with node's crypto and the key's JWK.  Each client's first
// request (untimed warm-up) goes through Key Vault's bearer challenge.
//
// Output on stdout: with --sync, "phase NAME" before each phase (then it
// waits for a line on stdin, so the caller can sample CPU times) and
// "done NAME" after; "skip REASON" when the SDK is not installed; last,
// "result {JSON}": sdk version, per phase {ops, secs, opsPerSec, connects
// (TLS handshakes: calls of tls.connect), requests, cpuMs (this process)},
// and checks.  Progress and errors on stderr; exit code 1 on failure.

import crypto from 'node:crypto';
import readline from 'node:readline';

import { fileCredential, loadKeyvaultKeys, tlsCount } from './sdkcommon.mjs';

// ------------------------------------------------------------- arguments

const opt = { keys: 200, gets: 10, signs: 1000, rsaKeys: 4, concurrency: 2, prefix: null, sync: false };
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
      case '--keys': opt.keys = num(++i); break;
      case '--gets': opt.gets = num(++i); break;
      case '--signs': opt.signs = num(++i); break;
      case '--rsa-keys': opt.rsaKeys = num(++i); break;
      case '--concurrency': opt.concurrency = num(++i); break;
      case '--prefix': opt.prefix = a[++i]; if (!/^[0-9a-zA-Z-]{1,40}$/.test(opt.prefix ?? '')) usage(); break;
      case '--sync': opt.sync = true; break;
      default: usage();
    }
  }
}

function usage() {
  console.error('usage: https-sdk.mjs [--keys N] [--gets N] [--signs N] [--rsa-keys N] '
    + '[--concurrency N] [--prefix P] [--sync]');
  process.exit(2);
}

const url = process.env.KEYBRIDGE_URL;
const tokenFile = process.env.KEYBRIDGE_TOKEN_FILE;
if (!url || !tokenFile) {
  console.error('https-sdk.mjs: KEYBRIDGE_URL and KEYBRIDGE_TOKEN_FILE must be set');
  process.exit(2);
}
const prefix = opt.prefix ?? `sdk${crypto.randomBytes(3).toString('hex')}-`;

// ------------------------------------------------------------------ SDK

const { mod: { KeyClient, CryptographyClient }, version: sdkVersion } = loadKeyvaultKeys();

const credential = fileCredential(tokenFile);

// Every request that reaches the wire; signs answered by the agent.
let requests = 0;
let signRequests = 0;
let challenges = 0;
const counter = {
  name: 'kbBenchCounter',
  async sendRequest(request, next) {
    requests++;
    const response = await next(request);
    if (response.status === 401)
      challenges++;
    else if (response.status === 200 && request.method === 'POST' && /\/sign\?/.test(request.url))
      signRequests++;
    return response;
  },
};

const clientOptions = {
  serviceVersion: '7.6',
  // keybridge answers for https://127.0.0.1:PORT, not *.vault.azure.net
  disableChallengeResourceVerification: true,
  // an error shows at once, not after the SDK's backoff
  retryOptions: { maxRetries: 0 },
  additionalPolicies: [{ policy: counter, position: 'perRetry' }],
};

const client = new KeyClient(url, credential, clientOptions);

// ------------------------------------------------------------- the work

const digests = [];
const messages = [];
for (let i = 0; i < opt.signs; i++) {
  messages.push(Buffer.from(`kb-bench-${i}`));
  digests.push(crypto.createHash('sha256').update(messages[i]).digest());
}

let stdinLines;
async function waitGo() {
  stdinLines ??= readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const { done } = await stdinLines.next();
  if (done)
    throw new Error('stdin closed before "go"');
}

const phases = {};
async function phase(name, total, op) {
  if (opt.sync) {
    console.log(`phase ${name}`);
    await waitGo();
  }
  const c0 = tlsCount.connects;
  const r0 = requests;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= total)
        return;
      await op(i);
    }
  };
  await Promise.all(Array.from({ length: opt.concurrency }, worker));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  phases[name] = {
    ops: total, secs, opsPerSec: total / secs, connects: tlsCount.connects - c0,
    requests: requests - r0, cpuMs: (cpu.user + cpu.system) / 1000,
  };
  if (opt.sync)
    console.log(`done ${name}`);
  else
    console.error(`https-sdk: ${name}: ${total} ops in ${secs.toFixed(2)} s, ${(total / secs).toFixed(1)}/s`);
}

const b64u = (b) => Buffer.from(b).toString('base64url');
function nodePublicKey(jwk) {
  const kty = jwk.kty.replace(/-HSM$/, '');
  if (kty === 'RSA')
    return crypto.createPublicKey({ key: { kty, n: b64u(jwk.n), e: b64u(jwk.e) }, format: 'jwk' });
  return crypto.createPublicKey({ key: { kty, crv: jwk.crv, x: b64u(jwk.x), y: b64u(jwk.y) }, format: 'jwk' });
}

let signCalls = 0;
let verified = 0;
let verifyWanted = 0;
// CryptographyClient.sign: the SDK picks the provider (remote for sign).
async function sign(cc, alg, i) {
  signCalls++;
  const r = await cc.sign(alg, digests[i]);
  return r.result;
}

function check(alg, key, i, sig) {
  verifyWanted++;
  const pub = nodePublicKey(key.key);
  const ok = alg === 'RS256'
    ? crypto.verify('sha256', messages[i], { key: pub, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.from(sig))
    : crypto.verify('sha256', messages[i], { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig));
  if (ok)
    verified++;
  else
    console.error(`https-sdk: ${alg} signature ${i} by ${key.name} does not verify`);
}

async function main() {
  // Setup, not timed: RSA keys, a client per key, the bearer challenge of
  // every client (its first request) done here.
  const rsaKeys = [];
  for (let i = 0; i < opt.rsaKeys; i++)
    rsaKeys.push(await client.createRsaKey(`${prefix}rsa-${i}`, { keySize: 2048 }));
  const rsaClients = rsaKeys.map((k) => new CryptographyClient(k, credential, clientOptions));
  // in parallel, so that --concurrency connections are open, as the C
  // client's handles are before its phases
  await Promise.all(rsaClients.map((cc) => sign(cc, 'RS256', 0)));

  const ecNames = Array.from({ length: opt.keys }, (_, i) => `${prefix}ec-${String(i).padStart(4, '0')}`);
  const ecKeys = new Array(opt.keys);
  await phase('create', opt.keys, async (i) => {
    ecKeys[i] = await client.createEcKey(ecNames[i], { curve: 'P-256' });
  });
  await phase('get', opt.keys * opt.gets, async (i) => {
    await client.getKey(ecNames[i % opt.keys]);
  });

  const rsSigs = [];
  await phase('sign-rs256', opt.signs, async (i) => {
    const k = i % rsaClients.length;
    const s = await sign(rsaClients[k], 'RS256', i);
    if (i < rsaClients.length)
      rsSigs[i] = s;
  });

  const nEs = Math.min(opt.rsaKeys, opt.keys);
  const ecClients = ecKeys.slice(0, nEs).map((k) => new CryptographyClient(k, credential, clientOptions));
  await Promise.all(ecClients.map((cc) => sign(cc, 'ES256', 0)));
  const esSigs = [];
  await phase('sign-es256', opt.signs, async (i) => {
    const k = i % ecClients.length;
    const s = await sign(ecClients[k], 'ES256', i);
    if (i < ecClients.length)
      esSigs[i] = s;
  });

  for (let i = 0; i < rsSigs.length; i++)
    check('RS256', rsaKeys[i], i, rsSigs[i]);
  for (let i = 0; i < esSigs.length; i++)
    check('ES256', ecKeys[i], i, esSigs[i]);

  const result = {
    sdk: sdkVersion, node: process.version, concurrency: opt.concurrency, phases,
    checks: { signCalls, signRequests, verified, verifyWanted, challenges, requests },
  };
  console.log(`result ${JSON.stringify(result)}`);
  if (verified !== verifyWanted || signRequests !== signCalls) {
    console.error('https-sdk: a check failed: ' + JSON.stringify(result.checks));
    process.exitCode = 1;
  }
}

main().then(() => {
  if (stdinLines)
    process.stdin.destroy();
}, (e) => {
  const why = e?.statusCode ? `${e.name} ${e.statusCode} ${e.code ?? ''}: ${e.message}` : (e?.stack ?? e);
  console.error(`https-sdk: ${why}`);
  process.exit(1);
});
