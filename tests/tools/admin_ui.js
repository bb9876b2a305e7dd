// Drives the real synapse-admin web UI (a static build) in headless Debian Chromium against a
// Handover server, for tests/e2e/admin_ui.rs. Serves the UI itself on a free port, logs in
// through the UI's form, and does what an admin does: sees the users and rooms lists,
// deactivates a user, locks one, quarantines a file, reads an event report, deletes a room
// (synapse-admin's Delete button: DELETE /_synapse/admin/v2/rooms/{id}). Every request to
// the homeserver that fails (HTTP >= 400 or no answer) is logged and fails the run, so a missing
// endpoint or a wrong response shape shows up here. Screenshots go to SHOTS_DIR.
//
// Env: UI_DIR, HS_URL, ADMIN_USER, ADMIN_PASSWORD, SHOTS_DIR, ROOM_NAME, DEACTIVATE_USER,
//      LOCK_USER, MEDIA_USER, MEDIA_ID, REPORT_REASON, DELETE_ROOM_ID. Prints one JSON line:
//      {"ok", "failures", "steps", "delete_id"}; exits 1 on failure.
const { chromium } = require('playwright-core');
const http = require('http');
const fs = require('fs');
const path = require('path');
const os = require('os');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`missing env ${k}`);
  return v;
};
const uiDir = path.resolve(env('UI_DIR'));
const hs = env('HS_URL');
const shots = env('SHOTS_DIR');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.png': 'image/png', '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon', '.woff2': 'font/woff2', '.woff': 'font/woff' };

function serveUi() {
  const srv = http.createServer((req, res) => {
    let p = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (p.endsWith('/')) p += 'index.html';
    const f = path.join(uiDir, path.normalize(p));
    if (!f.startsWith(uiDir) || !fs.existsSync(f) || fs.statSync(f).isDirectory()) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(f)] || 'application/octet-stream' });
    fs.createReadStream(f).pipe(res);
  });
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r(srv)));
}

const failures = [];
const steps = [];
let deleteId = null;
const step = (s) => { steps.push(s); console.error(`== ${s}`); };

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const srv = await serveUi();
  const ui = `http://127.0.0.1:${srv.address().port}/`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'admin-ui-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    headless: true,
    // Tall enough that the UI's fixed footer never covers the form's Save button.
    viewport: { width: 1440, height: 1600 },
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = browser.pages()[0] || (await browser.newPage());
    page.setDefaultTimeout(20000);
    page.on('response', (r) => {
      if (r.url().startsWith(hs) && r.status() >= 400) {
        failures.push(`${r.request().method()} ${r.url()} -> ${r.status()}`);
      }
    });
    page.on('requestfailed', (r) => {
      if (r.url().startsWith(hs)) failures.push(`${r.method()} ${r.url()} -> ${r.failure()?.errorText}`);
    });
    const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
    const waitFor = (method, fragment) => {
      const p = page.waitForResponse(
        (r) => r.request().method() === method && r.url().includes(fragment) && r.status() < 400);
      p.catch(() => {});
      return p;
    };
    const user = (id) => `#/users/${encodeURIComponent(id)}`;

    step('login through the form');
    await page.goto(ui);
    await page.fill('input[name=username]', env('ADMIN_USER'));
    await page.fill('input[name=password]', env('ADMIN_PASSWORD'));
    await page.fill('input[name=base_url]', hs);
    await shot('01-login');
    const listed = waitFor('GET', '/_synapse/admin/v2/users?');
    await page.click('button[type=submit]');
    await listed;

    step('users list');
    await page.getByText(env('LOCK_USER')).first().waitFor();
    await page.getByText(env('DEACTIVATE_USER')).first().waitFor();
    await shot('02-users');

    step('rooms list');
    const rooms = waitFor('GET', '/_synapse/admin/v1/rooms?');
    await page.goto(ui + '#/rooms');
    await rooms;
    await page.getByText(env('ROOM_NAME')).first().waitFor();
    await shot('03-rooms');

    step('deactivate a user');
    await page.goto(ui + user(env('DEACTIVATE_USER')));
    await page.locator('input[name=deactivated]').waitFor();
    await page.locator('input[name=deactivated]').check();
    let saved = waitFor('PUT', '/_synapse/admin/v2/users/');
    await page.locator('button[aria-label=Save]').click();
    await saved;
    await shot('04-deactivated');

    step('lock a user');
    await page.goto(ui + user(env('LOCK_USER')));
    await page.locator('input[name=locked]').waitFor();
    await page.locator('input[name=locked]').check();
    saved = waitFor('PUT', '/_synapse/admin/v2/users/');
    await page.locator('button[aria-label=Save]').click();
    await saved;
    await shot('05-locked');

    step('quarantine a file');
    await page.goto(ui + user(env('MEDIA_USER')) + '/media');
    await page.getByText(env('MEDIA_ID')).first().waitFor();
    const quarantined = waitFor('POST', `/_synapse/admin/v1/media/quarantine/`);
    await page.locator('button[aria-label=Quarantine]').first().click();
    await quarantined;
    await shot('06-quarantined');

    step('read an event report');
    await page.goto(ui + '#/reports');
    const row = page.locator('tbody tr').first();
    await row.waitFor();
    const report = waitFor('GET', '/_synapse/admin/v1/event_reports/');
    await row.click();
    await report;
    await page.getByText(env('REPORT_REASON')).first().waitFor();
    await shot('07-report');

    step('delete a room');
    const roomId = env('DELETE_ROOM_ID');
    await page.goto(ui + `#/rooms/${encodeURIComponent(roomId)}/show`);
    await page.getByText(roomId).first().waitFor();
    await page.getByRole('button', { name: 'Delete' }).first().click();
    await page.getByText('Are you sure you want to delete the room?').waitFor();
    await shot('08-delete-confirm');
    const deleted = waitFor('DELETE', '/_synapse/admin/v2/rooms/');
    await page.getByRole('button', { name: 'Confirm' }).click();
    const res = await deleted;
    deleteId = (await res.json()).delete_id;
    // Back on the list, without the room.
    await page.waitForURL(/#\/rooms$/);
    await shot('09-deleted');
  } finally {
    await browser.close();
    srv.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main()
  .then(() => {
    console.log(JSON.stringify({ ok: failures.length === 0, failures, steps, delete_id: deleteId }));
    process.exit(failures.length === 0 ? 0 : 1);
  })
  .catch((e) => {
    console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e), failures, steps }));
    process.exit(1);
  });
