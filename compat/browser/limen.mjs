// A throw-away Limen for the browser tests: an OpenID Provider whose issuer is its own
// loopback URL, with signing keys, a person (alice) and the clients the tests use.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = process.env.LIMEN_BIN || join(repo, 'target', 'debug', 'limen');
export const PASSWORD = 'alice-Secret-42';
export const CALLBACK = 'http://127.0.0.1:9/cb';
const ADMIN_PASSWORD = 'limen-browser-Admin-1';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function startLimen() {
  const dir = mkdtempSync(join(tmpdir(), 'limen-browser-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, 'limen.toml');
  writeFileSync(config, `[identity]\npassword_hash_rounds = 4\n\n[oidc]\nissuer = "${url}"\n`);
  const global = ['--config', config, '--data-dir', join(dir, 'data')];
  if (process.env.LIMEN_TEST_DATABASE_URL) {
    global.push('--database-url', process.env.LIMEN_TEST_DATABASE_URL);
  }
  const limen = (...args) =>
    execFileSync(bin, [...args, ...global], { encoding: 'utf8', env: { ...process.env, LIMEN_LOG: 'warn' } });
  limen('bootstrap', '--admin-password', ADMIN_PASSWORD, '--public-url', `${url}/v3`);
  limen('keys', 'oidc', 'setup');
  const proc = spawn(bin, ['serve', '--listen', `127.0.0.1:${port}`, ...global], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, LIMEN_LOG: 'warn' },
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/oauth2/jwks`);
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error('limen serve did not come up');
    await new Promise((r) => setTimeout(r, 100));
  }
  const admin = await fetch(`${url}/v3/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ auth: {
      identity: { methods: ['password'], password: { user: {
        name: 'admin', domain: { id: 'default' }, password: ADMIN_PASSWORD } } },
      scope: { system: { all: true } } } }),
  });
  const token = admin.headers.get('x-subject-token');
  const made = await fetch(`${url}/v3/users`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token },
    body: JSON.stringify({ user: { name: 'alice', password: PASSWORD } }),
  });
  if (made.status !== 201) throw new Error(`create alice: ${made.status}`);
  const client = (...args) => {
    const out = limen('oauth-client', 'create', ...args);
    return Object.fromEntries(out.split('\n').filter((l) => l.includes(': ')).map((l) => l.split(': ')));
  };
  const web = client('--name', 'Team Dashboard', '--public', '--redirect-uri', CALLBACK);
  const cli = client('--name', 'kubectl', '--public',
    '--grant-type', 'urn:ietf:params:oauth:grant-type:device_code');
  return {
    url,
    webClientId: web.client_id,
    cliClientId: cli.client_id,
    stop() {
      proc.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
