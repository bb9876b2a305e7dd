// Drives the IG console (/_handover/console/) in headless Chromium with playwright-core, as
// tests/e2e/console.rs asks: a non-admin is refused, the admin signs in, places and releases a
// legal hold, checks a POST without the CSRF token is refused, searches the audit trail, ends a
// user's sessions, downloads a subject-access export and an audit export. Screenshots go to
// OUT_DIR. Prints one JSON line of results; exits non-zero on the first failed expectation.
//
// Env: BASE_URL, ADMIN_USER, ADMIN_PASS, PLAIN_USER, PLAIN_PASS, TARGET_USER, HOLD_ROOM, OUT_DIR.
// NODE_PATH must hold playwright-core (scripts/install-browser.sh prints it).
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing env ${k}`);
  return v;
};
const base = env('BASE_URL') + '/_handover/console';
const out = env('OUT_DIR');
fs.mkdirSync(out, { recursive: true });

function expect(cond, what) {
  if (!cond) throw new Error(`expectation failed: ${what}`);
}

async function signIn(page, user, pass) {
  await page.goto(base + '/login');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(pass);
  const [resp] = await Promise.all([
    page.waitForNavigation(),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  return resp;
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'handover-console-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    acceptDownloads: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const results = {};
  try {
    const page = browser.pages()[0] || (await browser.newPage());

    // A non-admin is refused.
    let resp = await signIn(page, env('PLAIN_USER'), env('PLAIN_PASS'));
    expect(resp.status() === 403, `non-admin sign-in answered ${resp.status()}`);
    expect((await page.content()).includes('not a server admin'), 'non-admin refusal message');
    await page.screenshot({ path: path.join(out, '01-non-admin-refused.png'), fullPage: true });
    resp = await page.goto(base + '/retention');
    expect(page.url().endsWith('/login'), `no session: redirected to login (${page.url()})`);

    // The admin signs in and lands on retention.
    resp = await signIn(page, env('ADMIN_USER'), env('ADMIN_PASS'));
    expect(resp.status() === 200 && page.url().endsWith('/retention'), `admin sign-in: ${resp.status()} ${page.url()}`);
    await page.screenshot({ path: path.join(out, '02-retention.png'), fullPage: true });
    const cookies = await browser.cookies();
    const c = cookies.find((c) => c.name === 'handover_console');
    expect(c && c.httpOnly && c.sameSite === 'Strict', 'session cookie HttpOnly SameSite=Strict');

    // Place and release a legal hold with a reason.
    const room = env('HOLD_ROOM');
    await page.getByLabel('Kind').selectOption('room');
    await page.getByLabel('Room id or user id').fill(room);
    await page.getByLabel('Reason (case reference)').fill('case 42: inquest');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Place hold' }).click()]);
    let html = await page.content();
    expect(html.includes('Legal hold placed'), 'hold placed note');
    const holds = page.getByRole('table', { name: 'Legal holds' });
    expect((await holds.textContent()).includes(room), 'room listed under legal holds');
    expect((await holds.textContent()).includes('case 42: inquest'), 'hold reason listed');
    await page.screenshot({ path: path.join(out, '03-hold-placed.png'), fullPage: true });

    // A POST without the CSRF token is refused (the session cookie alone is not enough).
    const forged = await browser.request.post(base + '/holds', {
      form: { kind: 'room', id: room, reason: 'forged', action: 'release' },
    });
    expect(forged.status() === 403, `POST without CSRF answered ${forged.status()}`);
    expect((await forged.text()).includes('CSRF'), 'CSRF refusal names the token');
    results.csrf_refused = true;

    await page.getByLabel('Room id or user id').fill(room);
    await page.getByLabel('Reason (case reference)').fill('inquest closed');
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Release hold' }).click()]);
    html = await page.content();
    expect(html.includes('released'), 'hold released note');
    expect(!(await page.getByRole('table', { name: 'Legal holds' }).textContent()).includes(room), 'hold gone');
    await page.screenshot({ path: path.join(out, '04-hold-released.png'), fullPage: true });

    // Audit search by user, with the chain's verification result.
    const target = env('TARGET_USER');
    await page.goto(base + '/audit');
    await page.getByLabel('User (actor or target)').fill(room);
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Search' }).click()]);
    html = await page.content();
    expect(html.includes('Audit chain intact'), 'chain verification shown');
    expect(html.includes('retention.hold') && html.includes('retention.release'), 'hold entries found');
    await page.screenshot({ path: path.join(out, '05-audit-search.png'), fullPage: true });
    const [auditDl] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export as JSON lines' }).click(),
    ]);
    await auditDl.saveAs(path.join(out, 'audit-export.jsonl'));

    // The target user's sessions: end them all (remote wipe).
    await page.goto(base + '/users?user=' + encodeURIComponent(target));
    expect((await page.content()).includes('Sessions of ' + target), 'sessions listed');
    await page.screenshot({ path: path.join(out, '06-user-sessions.png'), fullPage: true });
    await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'End all sessions of ' + target }).click(),
    ]);
    expect((await page.content()).includes('session(s) of ' + target), 'sessions ended note');
    await page.screenshot({ path: path.join(out, '07-sessions-ended.png'), fullPage: true });

    // Subject-access export of the same user.
    const [sarDl] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Subject-access export (ZIP) of ' + target }).click(),
    ]);
    await sarDl.saveAs(path.join(out, 'sar.zip'));
    results.sar = path.join(out, 'sar.zip');

    for (const [p, shot] of [['federation', '08-federation.png'], ['reports', '09-reports.png'], ['quarantine', '10-quarantine.png']]) {
      resp = await page.goto(base + '/' + p);
      expect(resp.status() === 200, `${p} page answered ${resp.status()}`);
      await page.screenshot({ path: path.join(out, shot), fullPage: true });
    }
    results.ok = true;
    console.log(JSON.stringify(results));
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
