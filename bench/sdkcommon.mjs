// sdkcommon.mjs: what the benchmarks' Azure SDK drivers (https-sdk.mjs,
// kvclient-sdk.mjs) share: loading @azure/keyvault-keys from tests/sdk
// (its committed lockfile), a credential from keybridge's token file, and
// a count of the TLS connections node opens.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

// The SDK module and its version; without it, a TAP-style "skip" line and exit 0.
export function loadKeyvaultKeys() {
  const sdkDir = process.env.KB_SDK_DIR
    ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'tests', 'sdk');
  try {
    const require = createRequire(path.join(sdkDir, 'package.json'));
    const mod = require('@azure/keyvault-keys');
    const version = JSON.parse(fs.readFileSync(
      path.join(sdkDir, 'node_modules', '@azure', 'keyvault-keys', 'package.json'), 'utf8')).version;
    return { mod, version };
  } catch (e) {
    console.log(`skip no @azure/keyvault-keys in ${sdkDir}/node_modules (npm ci --prefix tests/sdk)`);
    process.exit(0);
  }
}

// A TokenCredential reading the bearer token from the file (no
// @azure/identity: keybridge issues its own tokens).
export function fileCredential(tokenFile) {
  const bearer = fs.readFileSync(tokenFile, 'utf8').split('\n')[0].trim();
  return {
    async getToken() {
      return { token: bearer, expiresOnTimestamp: Date.now() + 3600 * 1000 };
    },
  };
}

// TLS handshakes: node's https agent opens every TLS connection through
// tls.connect (looked up at call time), so count the calls, and the
// handshakes that completed.
export const tlsCount = { connects: 0, secure: 0 };
{
  const orig = tls.connect;
  tls.connect = function countedConnect(...args) {
    tlsCount.connects++;
    const sock = orig.apply(this, args);
    sock.once('secureConnect', () => { tlsCount.secure++; });
    return sock;
  };
}
