// Limen's sign-in pages in headless Chromium (Debian's, driven by playwright-core), on a
// phone-sized screen: log in and consent, deny consent, approve a device code, deny one,
// log out. Labels and roles are how the tests find things, so they double as a check
// that the pages are accessible. Screenshots go to target/browser-artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startLimen, PASSWORD, CALLBACK } from './limen.mjs';

const artifacts = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'browser-artifacts');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
let limen;
let browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  limen = await startLimen();
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  limen?.stop();
});

/// A fresh browser profile on a phone-sized screen whose client callback answers "ok".
async function phone() {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  await ctx.route(`${CALLBACK}*`, (r) => r.fulfill({ status: 200, body: 'ok' }));
  return { ctx, page: await ctx.newPage() };
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

function authorizeUrl(extra = {}) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({
    response_type: 'code', client_id: limen.webClientId, redirect_uri: CALLBACK,
    scope: 'openid profile', state: 'browser-state', code_challenge: challenge,
    code_challenge_method: 'S256', ...extra,
  });
  return { url: `${limen.url}/oauth2/authorize?${q}`, verifier };
}

async function signIn(page, name) {
  await page.getByLabel('User name').fill('alice');
  await page.getByLabel('Password').fill(PASSWORD);
  await shot(page, name);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function startDevice() {
  const r = await fetch(`${limen.url}/oauth2/device_authorization`, {
    method: 'POST',
    body: new URLSearchParams({ client_id: limen.cliClientId, scope: 'openid' }),
  });
  assert.equal(r.status, 200);
  return r.json();
}

async function pollOnce(deviceCode) {
  const r = await fetch(`${limen.url}/oauth2/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
      client_id: limen.cliClientId, device_code: deviceCode,
    }),
  });
  return { status: r.status, body: await r.json() };
}

test('log in, consent, and the code comes back to the client', async () => {
  const { ctx, page } = await phone();
  const { url, verifier } = authorizeUrl();
  await page.goto(url);
  await page.waitForURL(/\/login\?/);
  await signIn(page, 'login');
  await page.getByRole('heading', { name: 'Allow access?' }).waitFor();
  assert.match(await page.textContent('main'), /Team Dashboard/);
  await shot(page, 'consent');
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL(new RegExp(`^${CALLBACK}`));
  const back = new URL(page.url());
  assert.equal(back.searchParams.get('state'), 'browser-state');
  const token = await fetch(`${limen.url}/oauth2/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'authorization_code', client_id: limen.webClientId,
      code: back.searchParams.get('code'), redirect_uri: CALLBACK, code_verifier: verifier,
    }),
  });
  assert.equal(token.status, 200);
  assert.ok((await token.json()).id_token);

  const session = (await ctx.cookies()).find((c) => c.name === 'limen_session');
  assert.ok(session, 'a session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');
  await ctx.close();
});

test('denying consent sends access_denied back to the client', async () => {
  const { ctx, page } = await phone();
  // Consent given in the test before is remembered: ask again.
  await page.goto(authorizeUrl({ prompt: 'consent' }).url);
  await signIn(page, 'login-for-deny');
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.waitForURL(new RegExp(`^${CALLBACK}`));
  assert.equal(new URL(page.url()).searchParams.get('error'), 'access_denied');
  await ctx.close();
});

test('a person approves a device code, and the device gets its tokens', async () => {
  const device = await startDevice();
  const { ctx, page } = await phone();
  await page.goto(`${limen.url}/device`);
  await signIn(page, 'login-for-device');
  await page.getByLabel('Code').fill(device.user_code.toLowerCase().replace('-', ' '));
  await shot(page, 'device-enter');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Approve this device?' }).waitFor();
  const text = await page.textContent('main');
  assert.match(text, /kubectl/);
  assert.match(text, new RegExp(device.user_code));
  await shot(page, 'device-approve');
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.getByRole('heading', { name: 'Device approved' }).waitFor();
  await shot(page, 'device-approved');
  const polled = await pollOnce(device.device_code);
  assert.equal(polled.status, 200, JSON.stringify(polled.body));
  assert.ok(polled.body.access_token);
  await ctx.close();
});

test('a person denies a device code from the complete link', async () => {
  const device = await startDevice();
  const { ctx, page } = await phone();
  await page.goto(device.verification_uri_complete);
  await signIn(page, 'login-for-device-deny');
  await page.getByRole('heading', { name: 'Approve this device?' }).waitFor();
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.getByRole('heading', { name: 'Request denied' }).waitFor();
  await shot(page, 'device-denied');
  const polled = await pollOnce(device.device_code);
  assert.equal(polled.body.error, 'access_denied');
  await ctx.close();
});

test('a wrong code shows an alert; logging out ends the session', async () => {
  const { ctx, page } = await phone();
  await page.goto(`${limen.url}/device`);
  await signIn(page, 'login-for-logout');
  await page.getByLabel('Code').fill('BBBB-BBBB');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('alert').waitFor();
  await shot(page, 'device-wrong-code');
  await page.goto(`${limen.url}/logout`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Signed out' }).waitFor();
  await shot(page, 'signed-out');
  assert.equal((await ctx.cookies()).find((c) => c.name === 'limen_session'), undefined);
  await page.goto(`${limen.url}/device`);
  await page.waitForURL(/\/login\?/);
  await ctx.close();
});
