// A real OpenID Provider for the identity tests: the npm package `oidc-provider` (certified),
// installed by scripts/install-oidc-provider.sh. Only the login form is ours (the library leaves
// the interaction UI to its host); discovery, JWKS, PKCE, tokens, ID token signing are the
// library's.
//
// Usage: node oidc-op.mjs CONFIG.json   (NODE_PATH=<the installed node_modules>)
// CONFIG: { "port": 0, "clients": [{ client_id, client_secret? | private_key_out?, redirect_uris,
//                                    backchannel_logout_uri?,
//                                    backchannel_logout_session_required? }],
//           "users_file": "users.json",
//           "conform_id_token_claims": false }   (true: profile claims only at userinfo)
// users.json (re-read at every login, so a test can change a user's claims between logins):
//   { "<login>": { "password": "...", "sub": "...", "acr": "...", "claims": { ... } } }
// Prints `listening <issuer>` on stdout when ready.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';

const require = createRequire(process.env.NODE_PATH + '/');
const { default: Provider } = await import(require.resolve('oidc-provider'));

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = () => JSON.parse(readFileSync(config.users_file, 'utf8'));
const bySub = (sub) => Object.values(users()).find((u) => u.sub === sub);

// A client using private_key_jwt: the key pair is made here, the private half handed to the test.
const clients = config.clients.map((c) => {
  const out = { ...c };
  delete out.private_key_out;
  out.grant_types = ['authorization_code'];
  out.response_types = ['code'];
  if (c.private_key_out) {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(c.private_key_out, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    out.token_endpoint_auth_method = 'private_key_jwt';
    out.token_endpoint_auth_signing_alg = 'RS256';
    out.jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' }] };
  }
  return out;
});

const server = createServer();
await new Promise((r) => server.listen(config.port || 0, '127.0.0.1', r));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients,
  cookies: { keys: ['handover-test-cookie-key'] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    // CIS2's scope for the national RBAC roles claim (the required-claims tests).
    nationalrbacaccess: ['nhsid_nrbac_roles'],
  },
  acrValues: ['aal1', 'aal2', 'aal3'],
  // Claims in the ID token too (Entra and CIS2 put the profile claims there).
  // With conform_id_token_claims the ID token carries only `sub` & co and the rest is at
  // userinfo (as many providers do): the userinfo tests.
  conformIdTokenClaims: config.conform_id_token_claims ?? false,
  // Back-channel logout: ending the session at /session/end POSTs a logout token to each
  // client with a backchannel_logout_uri.
  features: { devInteractions: { enabled: false }, backchannelLogout: { enabled: true } },
  pkce: { required: () => true },
  // The library refuses outgoing calls (back-channel logout) to special-use addresses such as
  // loopback (SSRF protection); here Handover is on loopback, so its dispatcher is dropped.
  fetch: (url, options) => {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  async findAccount(_ctx, sub) {
    const u = bySub(sub);
    if (!u) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...u.claims }) };
  },
});
provider.proxy = false;

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return Object.fromEntries(new URLSearchParams(body));
}

async function interaction(req, res) {
  const m = req.url.match(/^\/interaction\/([^/?]+)(\/login)?/);
  if (!m) return false;
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  if (req.method === 'POST' && m[2]) {
    const form = await readForm(req);
    const u = users()[form.login];
    if (!u || u.password !== form.password) {
      res.statusCode = 401;
      res.end('<!doctype html><p>wrong login</p>');
      return true;
    }
    await provider.interactionFinished(req, res, { login: { accountId: u.sub, acr: u.acr } }, {
      mergeWithLastSubmission: false,
    });
    return true;
  }
  if (prompt.name === 'login') {
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><title>Test OP</title><form method="post" action="/interaction/${esc(m[1])}/login">
<label>login <input name="login"></label><label>password <input name="password" type="password"></label>
<button type="submit">Sign in</button></form>`);
    return true;
  }
  // Consent: granted at once for whatever the client asked (the test user always agrees).
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, {
    mergeWithLastSubmission: true,
  });
  return true;
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  try {
    if (!(await interaction(req, res))) callback(req, res);
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e));
  }
});
console.log(`listening ${issuer}`);
