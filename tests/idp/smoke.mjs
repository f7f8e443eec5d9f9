// Smoke test for server.mjs: starts it with example-config.json and checks
// every feature the Rust integration tests rely on, with plain fetch.
//
//   cd tests/idp && npm ci && node smoke.mjs
//
// Exits non-zero on the first failure (server stderr is printed then).

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as jose from 'jose';

const here = path.dirname(fileURLToPath(import.meta.url));
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_AT = 'urn:ietf:params:oauth:token-type:access_token';
const MCP = 'http://toolgate.test/mcp';
const OPAQUE = 'http://toolgate.test/opaque';
const UPSTREAM = 'http://upstream.test/api';
const EDDSA = 'http://upstream.test/eddsa';
const REDIRECT = 'http://127.0.0.1:65535/callback';

let passed = 0;
let serverLog = '';

function check(cond, what, detail) {
  if (!cond) {
    const err = new Error(`check failed: ${what}${detail === undefined ? '' : ` -- ${JSON.stringify(detail)}`}`);
    err.isCheck = true;
    throw err;
  }
}

async function step(name, fn) {
  await fn();
  passed += 1;
  console.log(`ok ${passed} - ${name}`);
}

async function startServer(configFile) {
  const child = spawn(process.execPath, [path.join(here, 'server.mjs'), configFile], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stderr.on('data', (d) => { serverLog += d; });
  const rl = readline.createInterface({ input: child.stdout });
  const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
  const [line] = await Promise.race([
    once(rl, 'line'),
    once(child, 'exit').then(() => { throw new Error('server exited before ready'); }),
  ]);
  clearTimeout(timer);
  const extra = [];
  rl.on('line', (l) => extra.push(l));
  return { child, ready: JSON.parse(line), ready_line: line, extraStdout: extra };
}

const decode = (jwt) => ({ header: jose.decodeProtectedHeader(jwt), claims: jose.decodeJwt(jwt) });
const basic = (id, secret) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function main() {
  const { child, ready, ready_line: readyLine, extraStdout } = await startServer(path.join(here, 'example-config.json'));
  const { issuer } = ready;
  console.log(`ready line: ${readyLine}`);

  const post = async (p, form, auth) => {
    const r = await fetch(new URL(p, issuer), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...(auth ? { authorization: auth } : undefined),
      },
      body: new URLSearchParams(form),
    });
    const text = await r.text();
    let body;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: r.status, body };
  };
  const admin = async (p, body, query = '') => {
    const r = await fetch(new URL(`/admin/${p}${query}`, issuer), {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    check(r.ok, `admin ${p} ok`, text);
    return r.headers.get('content-type').startsWith('application/json') ? JSON.parse(text) : text;
  };
  const jwks = async () => (await (await fetch(new URL('/jwks', issuer))).json());
  const verify = async (jwt, opts = {}) => jose.jwtVerify(jwt, jose.createLocalJWKSet(await jwks()), { issuer, ...opts });
  const cc = (client, secret, extra, method = 'basic') => post('/token', {
    grant_type: 'client_credentials',
    ...extra,
    ...(method === 'post' ? { client_id: client, client_secret: secret } : undefined),
  }, method === 'basic' ? basic(client, secret) : undefined);

  let meta;
  await step('ready line is exactly {issuer, port}', async () => {
    check(/^http:\/\/127\.0\.0\.1:\d+$/.test(issuer), 'issuer format', issuer);
    check(Number.isInteger(ready.port) && issuer.endsWith(`:${ready.port}`), 'port', ready);
    check(Object.keys(ready).join() === 'issuer,port', 'only issuer and port', ready);
  });

  await step('discovery (openid-configuration and RFC 8414)', async () => {
    meta = await (await fetch(new URL('/.well-known/openid-configuration', issuer))).json();
    for (const f of ['jwks_uri', 'token_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'authorization_endpoint']) {
      check(typeof meta[f] === 'string' && meta[f].startsWith(issuer), `discovery has ${f}`, meta[f]);
    }
    for (const g of ['authorization_code', 'client_credentials', 'refresh_token', TOKEN_EXCHANGE]) {
      check(meta.grant_types_supported.includes(g), `grant_types_supported has ${g}`, meta.grant_types_supported);
    }
    check(!meta.grant_types_supported.includes('implicit'), 'no implicit grant', meta.grant_types_supported);
    check(meta.code_challenge_methods_supported.includes('S256'), 'S256 PKCE');
    check(meta.issuer === issuer, 'issuer');
    const as = await (await fetch(new URL('/.well-known/oauth-authorization-server', issuer))).json();
    check(as.issuer === issuer && as.token_endpoint === meta.token_endpoint, 'RFC 8414 metadata', as);
    console.log(`  endpoints: token=${meta.token_endpoint} introspection=${meta.introspection_endpoint} revocation=${meta.revocation_endpoint} jwks=${meta.jwks_uri}`);
    console.log(`  grant_types_supported: ${meta.grant_types_supported.join(' ')}`);
  });

  let initialKeys;
  await step('JWKS publishes RS256, ES256 and EdDSA keys; /admin/keys lists them', async () => {
    const set = await jwks();
    initialKeys = await admin('keys');
    check(set.keys.length === 3, 'three keys', set);
    check(set.keys.every((k) => !k.d), 'public keys only');
    check(JSON.stringify(set.keys.map((k) => k.kid)) === JSON.stringify(initialKeys.keys.map((k) => k.kid)), 'same kids', { set, initialKeys });
    check(initialKeys.current === set.keys[0].kid, 'current is first', initialKeys);
    console.log(`  keys: ${initialKeys.keys.map((k) => `${k.kid}(${k.alg})`).join(' ')}`);
  });

  let svcJwt;
  await step('client_credentials JWT access token (RS256, resource indicator, extra claims)', async () => {
    const r = await cc('svc-t1', 'svc-t1-secret', { resource: MCP, scope: 'tools:read tools:call' });
    check(r.status === 200, 'token 200', r);
    check(r.body.token_type === 'Bearer' && r.body.expires_in === 300, 'token_type/expires_in', r.body);
    svcJwt = r.body.access_token;
    const { header } = decode(svcJwt);
    const { payload } = await verify(svcJwt, { audience: MCP, typ: 'at+jwt' });
    check(header.alg === 'RS256' && header.kid === initialKeys.keys[0].kid, 'header alg/kid', header);
    check(payload.sub === 'svc-t1' && payload.client_id === 'svc-t1', 'sub/client_id', payload);
    check(payload.scope === 'tools:read tools:call', 'scope string', payload);
    check(payload.tenant_id === 't1' && payload.groups?.join() === 'eng', 'extra claims', payload);
    check(payload.exp - payload.iat === 300 && typeof payload.jti === 'string', 'exp/jti', payload);
    console.log(`  header: ${JSON.stringify(header)}`);
    console.log(`  claims: ${JSON.stringify(payload)}`);
  });

  await step('client_secret_post + default_resource + scope limited to client', async () => {
    const r = await cc('svc-t2', 'svc-t2-secret', { scope: 'tools:read tools:call' }, 'post');
    check(r.status === 200, 'token 200', r);
    const { payload } = await verify(r.body.access_token, { audience: MCP });
    check(payload.sub === 'svc-t2' && payload.tenant_id === 't2', 'sub/tenant', payload);
    check(payload.scope === 'tools:read', 'tools:call dropped (not in client scope)', payload);
    const bad = await cc('svc-t2', 'wrong', { resource: MCP }, 'post');
    check(bad.status === 401 && bad.body.error === 'invalid_client', 'bad secret rejected', bad);
    const unknown = await cc('svc-t1', 'svc-t1-secret', { resource: 'http://nope.test/' });
    check(unknown.status === 400 && unknown.body.error === 'invalid_target', 'unknown resource rejected', unknown);
  });

  await step('ES256 and EdDSA signed resources', async () => {
    const es = await cc('svc-t1', 'svc-t1-secret', { resource: UPSTREAM, scope: 'upstream:read' });
    check(es.status === 200, 'token 200', es);
    const { payload, protectedHeader } = await verify(es.body.access_token, { audience: 'upstream-api' });
    check(protectedHeader.alg === 'ES256' && payload.scope === 'upstream:read', 'ES256', { protectedHeader, payload });
    const ed = await cc('svc-t1', 'svc-t1-secret', { resource: EDDSA, scope: 'upstream:read' });
    const v = await verify(ed.body.access_token, { audience: EDDSA });
    check(v.protectedHeader.alg === 'EdDSA' && v.payload.exp - v.payload.iat === 60, 'EdDSA', v);
  });

  await step('opaque token: introspection active, revocation, then inactive', async () => {
    const r = await cc('svc-t1', 'svc-t1-secret', { resource: OPAQUE, scope: 'tools:read' });
    check(r.status === 200, 'token 200', r);
    const opaque = r.body.access_token;
    check(!opaque.includes('.'), 'opaque', opaque);
    const i1 = await post('/token/introspection', { token: opaque }, basic('toolgate', 'toolgate-secret'));
    check(i1.status === 200 && i1.body.active === true, 'active', i1);
    check(i1.body.aud === OPAQUE && i1.body.client_id === 'svc-t1' && i1.body.scope === 'tools:read', 'introspection fields', i1.body);
    check(i1.body.tenant_id === 't1' && i1.body.iss === issuer, 'extra claims in introspection', i1.body);
    console.log(`  introspection: ${JSON.stringify(i1.body)}`);
    const unauth = await post('/token/introspection', { token: opaque });
    check(unauth.status === 400 || unauth.status === 401, 'introspection requires client auth', unauth);
    const rv = await post('/token/revocation', { token: opaque }, basic('svc-t1', 'svc-t1-secret'));
    check(rv.status === 200, 'revocation 200', rv);
    const i2 = await post('/token/introspection', { token: opaque }, basic('toolgate', 'toolgate-secret'));
    check(i2.status === 200 && i2.body.active === false && Object.keys(i2.body).length === 1, 'inactive after revocation', i2);
    const ex = await post('/token', {
      grant_type: TOKEN_EXCHANGE, subject_token: opaque, subject_token_type: TT_AT, audience: UPSTREAM,
    }, basic('toolgate', 'toolgate-secret'));
    check(ex.status === 400 && ex.body.error === 'invalid_grant', 'revoked subject token rejected by exchange', ex);
  });

  await step('RFC 8693 token exchange (JWT subject token)', async () => {
    const r = await post('/token', {
      grant_type: TOKEN_EXCHANGE,
      subject_token: svcJwt,
      subject_token_type: TT_AT,
      audience: UPSTREAM,
      scope: 'upstream:read',
    }, basic('toolgate', 'toolgate-secret'));
    check(r.status === 200, 'exchange 200', r);
    check(r.body.issued_token_type === TT_AT && r.body.token_type === 'Bearer' && r.body.expires_in === 120, 'RFC 8693 response', r.body);
    const { payload, protectedHeader } = await verify(r.body.access_token, { audience: 'upstream-api' });
    check(payload.sub === 'svc-t1' && payload.act?.sub === 'toolgate' && payload.client_id === 'toolgate', 'sub/act', payload);
    check(payload.scope === 'upstream:read' && payload.tenant_id === 't1', 'scope/tenant carried', payload);
    check(protectedHeader.alg === 'ES256', 'target alg', protectedHeader);
    console.log(`  response: ${JSON.stringify({ ...r.body, access_token: '…' })}`);
    console.log(`  claims: ${JSON.stringify(payload)}`);
  });

  await step('token exchange: opaque subject, resource param, errors', async () => {
    const o = await cc('svc-t2', 'svc-t2-secret', { resource: OPAQUE, scope: 'tools:read' }, 'post');
    const r = await post('/token', {
      grant_type: TOKEN_EXCHANGE, subject_token: o.body.access_token, subject_token_type: TT_AT, resource: UPSTREAM,
    }, basic('toolgate', 'toolgate-secret'));
    check(r.status === 200, 'exchange 200', r);
    const { payload } = await verify(r.body.access_token, { audience: 'upstream-api' });
    check(payload.sub === 'svc-t2' && payload.tenant_id === 't2' && payload.act.sub === 'toolgate', 'claims', payload);
    check(payload.scope === 'upstream:read upstream:write', 'default scope = all target scopes allowed to client', payload);

    const foreignKey = await jose.generateKeyPair('RS256');
    const forged = await new jose.SignJWT({ sub: 'mallory', aud: MCP })
      .setProtectedHeader({ alg: 'RS256', kid: initialKeys.current })
      .setIssuer(issuer).setIssuedAt().setExpirationTime('5m').sign(foreignKey.privateKey);
    const f = await post('/token', {
      grant_type: TOKEN_EXCHANGE, subject_token: forged, subject_token_type: TT_AT, audience: UPSTREAM,
    }, basic('toolgate', 'toolgate-secret'));
    check(f.status === 400 && f.body.error === 'invalid_grant', 'forged subject rejected', f);
    const expired = await admin('sign', { iss: issuer, sub: 'alice', aud: MCP, iat: 1000, exp: 2000 });
    const e = await post('/token', {
      grant_type: TOKEN_EXCHANGE, subject_token: expired, subject_token_type: TT_AT, audience: UPSTREAM,
    }, basic('toolgate', 'toolgate-secret'));
    check(e.status === 400 && e.body.error === 'invalid_grant', 'expired subject rejected', e);
    const t = await post('/token', {
      grant_type: TOKEN_EXCHANGE, subject_token: svcJwt, subject_token_type: TT_AT, audience: 'http://nowhere.test',
    }, basic('toolgate', 'toolgate-secret'));
    check(t.status === 400 && t.body.error === 'invalid_target', 'unknown audience rejected', t);
    const g = await post('/token', {
      grant_type: TOKEN_EXCHANGE, subject_token: svcJwt, subject_token_type: TT_AT, audience: UPSTREAM,
    }, basic('svc-t2', 'svc-t2-secret'));
    check(g.status === 400 && /not allowed/.test(g.body.error_description), 'client without the grant type rejected', g);
  });

  const authCodeFlow = async (extra, { tokenExtra = {}, replayCheck = false } = {}) => {
    const verifier = crypto.randomBytes(32).toString('base64url');
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    const state = crypto.randomBytes(8).toString('hex');
    const u = new URL(meta.authorization_endpoint);
    u.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'mcp-client',
      redirect_uri: REDIRECT,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...extra,
    });
    const a = await fetch(u, { redirect: 'manual' });
    check(a.status === 303 || a.status === 302, 'authorization redirects', { status: a.status, body: await a.text() });
    const loc = new URL(a.headers.get('location'));
    check(`${loc.origin}${loc.pathname}` === REDIRECT, 'redirected to redirect_uri', loc.href);
    check(loc.searchParams.get('state') === state && loc.searchParams.get('iss') === issuer, 'state/iss', loc.href);
    const code = loc.searchParams.get('code');
    check(code, 'code present', loc.href);
    const t = await post('/token', {
      grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: 'mcp-client', ...tokenExtra,
    });
    check(t.status === 200, 'code exchanged', t);
    if (replayCheck) {
      // NB: a replayed code revokes the whole grant (incl. its refresh token).
      const replay = await post('/token', {
        grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: 'mcp-client',
      });
      check(replay.status === 400 && replay.body.error === 'invalid_grant', 'code is single use', replay);
    }
    return t.body;
  };

  let aliceJwt;
  await step('authorization_code + PKCE, auto-completed login/consent (no openid, MCP style)', async () => {
    const body = await authCodeFlow({ scope: 'tools:read tools:call', resource: MCP });
    aliceJwt = body.access_token;
    const { payload } = await verify(aliceJwt, { audience: MCP });
    check(payload.sub === 'alice' && payload.client_id === 'mcp-client', 'sub/client', payload);
    check(payload.scope === 'tools:read tools:call', 'scope', payload);
    check(payload.tenant_id === 't1' && payload.groups.join() === 'eng,admins', 'user token claims', payload);
    check(body.refresh_token, 'refresh token issued', body);
    console.log(`  token response keys: ${Object.keys(body).join(' ')}`);
    console.log(`  claims: ${JSON.stringify(payload)}`);
    const rt = await post('/token', { grant_type: 'refresh_token', refresh_token: body.refresh_token, client_id: 'mcp-client' });
    check(rt.status === 200, 'refresh 200', rt);
    const v = await verify(rt.body.access_token, { audience: MCP });
    check(v.payload.sub === 'alice' && v.payload.scope === 'tools:read tools:call', 'refreshed token', v.payload);
  });

  await step('authorization_code + PKCE with openid and login_hint=bob (id_token)', async () => {
    const body = await authCodeFlow({ scope: 'openid email tools:read', resource: MCP, login_hint: 'bob' }, { replayCheck: true });
    const { payload } = await verify(body.access_token, { audience: MCP });
    check(payload.sub === 'bob' && payload.tenant_id === 't2' && payload.scope === 'tools:read', 'bob access token', payload);
    const id = await verify(body.id_token, { audience: 'mcp-client' });
    check(id.payload.sub === 'bob' && id.payload.email === 'bob@example.test', 'id_token', id.payload);
    // missing PKCE is rejected (OAuth 2.1)
    const u = new URL(meta.authorization_endpoint);
    u.search = new URLSearchParams({ response_type: 'code', client_id: 'mcp-client', redirect_uri: REDIRECT, scope: 'tools:read', resource: MCP });
    const a = await fetch(u, { redirect: 'manual' });
    const loc = new URL(a.headers.get('location'));
    check(loc.searchParams.get('error') === 'invalid_request', 'PKCE required', loc.href);
  });

  await step('token exchange of a user token keeps the user as sub', async () => {
    const r = await post('/token', {
      grant_type: TOKEN_EXCHANGE, subject_token: aliceJwt, subject_token_type: TT_AT, audience: 'upstream-api',
    }, basic('toolgate', 'toolgate-secret'));
    check(r.status === 200, 'exchange 200', r);
    const { payload } = await verify(r.body.access_token, { audience: 'upstream-api' });
    check(payload.sub === 'alice' && payload.act.sub === 'toolgate' && payload.tenant_id === 't1', 'claims', payload);
  });

  await step('/admin/sign signs arbitrary payloads with the current key', async () => {
    const jws = await admin('sign', { sub: 'x', aud: 'wrong-aud', custom: [1, 2] });
    const { header, claims } = decode(jws);
    check(header.kid === initialKeys.current && header.alg === 'RS256' && header.typ === 'at+jwt', 'header', header);
    check(JSON.stringify(claims) === JSON.stringify({ sub: 'x', aud: 'wrong-aud', custom: [1, 2] }), 'payload verbatim', claims);
    await jose.jwtVerify(jws, jose.createLocalJWKSet(await jwks()));
    const filled = await admin('sign', { sub: 'y', aud: MCP }, '?fill=1&alg=ES256&typ=JWT');
    const d = decode(filled);
    check(d.header.alg === 'ES256' && d.header.typ === 'JWT' && d.claims.iss === issuer && d.claims.exp > d.claims.iat, 'fill/alg/typ', d);
    const odd = decode(await admin('sign', { sub: 'z' }, '?header_kid=no-such-kid'));
    check(odd.header.kid === 'no-such-kid', 'header_kid override', odd.header);
  });

  await step('JWKS rotation: rotate adds a new signing kid, retire removes the old one', async () => {
    const oldKid = initialKeys.current;
    const rotated = await admin('rotate', {});
    const newKid = rotated.current;
    check(newKid !== oldKid && rotated.keys.length === 4, 'new current kid', rotated);
    let set = await jwks();
    check(set.keys.some((k) => k.kid === oldKid) && set.keys.some((k) => k.kid === newKid), 'both published', set.keys.map((k) => k.kid));
    const r = await cc('svc-t1', 'svc-t1-secret', { resource: MCP, scope: 'tools:read' });
    check(decode(r.body.access_token).header.kid === newKid, 'new tokens use new kid', decode(r.body.access_token).header);
    await verify(svcJwt, { audience: MCP }); // old token still verifies
    check(decode(await admin('sign', { a: 1 })).header.kid === newKid, '/admin/sign uses new kid');
    const retired = await admin('retire', {});
    set = await jwks();
    check(!set.keys.some((k) => k.kid === oldKid) && set.keys.some((k) => k.kid === newKid), 'old kid gone', set.keys.map((k) => k.kid));
    check(retired.keys.length === 3 && set.keys.length === 3, 'newest key per alg kept', retired);
    let failed = false;
    try { await verify(svcJwt); } catch (e) { failed = e.code === 'ERR_JWKS_NO_MATCHING_KEY'; }
    check(failed, 'old token no longer verifies against JWKS');
    const ex = await post('/token', {
      grant_type: TOKEN_EXCHANGE, subject_token: svcJwt, subject_token_type: TT_AT, audience: UPSTREAM,
    }, basic('toolgate', 'toolgate-secret'));
    check(ex.status === 400 && ex.body.error === 'invalid_grant', 'exchange rejects token of retired key', ex);
    // opaque tokens and sessions survive the provider re-creation
    const o = await cc('svc-t1', 'svc-t1-secret', { resource: OPAQUE, scope: 'tools:read' });
    await admin('rotate', { alg: 'ES256' });
    const i = await post('/token/introspection', { token: o.body.access_token }, basic('toolgate', 'toolgate-secret'));
    check(i.body.active === true, 'opaque token survives rotation', i);
    const es = await cc('svc-t1', 'svc-t1-secret', { resource: UPSTREAM, scope: 'upstream:read' });
    const keysNow = await admin('keys');
    check(decode(es.body.access_token).header.kid === keysNow.current, 'ES256 rotation used', { keysNow, h: decode(es.body.access_token).header });
    const only = await admin('retire', { all_but_newest: true });
    check(only.keys.length === 1 && (await jwks()).keys.length === 1, 'all_but_newest', only);
    console.log(`  rotate: ${oldKid} -> ${newKid}; after retire: ${set.keys.map((k) => k.kid).join(' ')}`);
  });

  await step('stdout carried only the ready line; exits when stdin closes', async () => {
    check(extraStdout.length === 0, 'no extra stdout', extraStdout);
    const t0 = Date.now();
    child.stdin.end();
    const [code] = await Promise.race([
      once(child, 'exit'),
      new Promise((_, rej) => setTimeout(() => rej(new Error('server did not exit on stdin close')), 5000)),
    ]);
    check(code === 0, 'exit code 0', code);
    console.log(`  exited ${Date.now() - t0} ms after stdin closed`);
  });

  await step('exits promptly on SIGTERM', async () => {
    const s = await startServer(path.join(here, 'example-config.json'));
    const r = await fetch(new URL('/jwks', s.ready.issuer));
    check(r.ok, 'second instance serves');
    s.child.kill('SIGTERM');
    await Promise.race([
      once(s.child, 'exit'),
      new Promise((_, rej) => setTimeout(() => rej(new Error('no exit after SIGTERM')), 5000)),
    ]);
  });
}

try {
  await main();
  if (process.env.SMOKE_SHOW_SERVER_LOG) console.log(serverLog);
  console.log(`${passed} passed, 0 failed`);
  process.exit(0);
} catch (err) {
  console.log(`not ok - ${err.message}`);
  if (!err.isCheck) console.log(err.stack);
  console.log('--- server stderr ---');
  console.log(serverLog);
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
}
