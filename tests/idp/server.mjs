// Test-only OAuth 2.1 / OpenID Connect authorization server for toolgate's
// integration tests, built on `oidc-provider` (see README.md).
//
//   node server.mjs CONFIG.json [--no-stdin-watch]
//
// stdout carries exactly one line, the ready line:
//   {"issuer":"http://127.0.0.1:PORT","port":PORT}
// Everything else (oidc-provider notices included) goes to stderr.
//
// NEVER expose this server beyond 127.0.0.1: it auto-approves logins and has
// unauthenticated admin endpoints that sign arbitrary payloads.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';

// oidc-provider prints its NOTICE lines with console.info (stdout). stdout is
// reserved for the ready line, so route every console method to stderr before
// the library is loaded (hence the dynamic import below).
for (const m of ['log', 'info', 'debug']) {
  console[m] = (...args) => console.error(...args);
}

const { default: Provider, errors } = await import('oidc-provider');
const jose = await import('jose');

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const TT_JWT = 'urn:ietf:params:oauth:token-type:jwt';
const INTERNAL_HEADER = 'x-toolgate-idp-internal';
const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'address', 'phone'];
// Claims that are not copied from a subject token into an exchanged token.
const REGISTERED_CLAIMS = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'scope', 'client_id', 'cnf',
  'act', 'azp', 'auth_time', 'acr', 'amr', 'sid', 'authorization_details',
]);

const log = (...args) => console.error('[idp]', ...args);

// ---------------------------------------------------------------- config ---

const argv = process.argv.slice(2);
const configPath = argv.find((a) => !a.startsWith('--'));
if (!configPath) {
  console.error('usage: node server.mjs CONFIG.json [--no-stdin-watch]');
  process.exit(2);
}
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
const watchStdin = !argv.includes('--no-stdin-watch') && config.exit_on_stdin_close !== false;

const host = config.host ?? '127.0.0.1';
const listenPort = config.port ?? 0;

const toScopeList = (s) => {
  if (s === undefined || s === null) return [];
  return (Array.isArray(s) ? s : String(s).split(' ')).filter(Boolean);
};

// resources: { "<resource indicator URL>": { audience, scope, format, ttl, alg } }
const resources = new Map();
for (const [indicator, r] of Object.entries(config.resources ?? {})) {
  const format = r.format ?? r.access_token_format ?? 'jwt';
  if (format !== 'jwt' && format !== 'opaque') {
    throw new Error(`resources[${indicator}].format must be "jwt" or "opaque"`);
  }
  resources.set(indicator, {
    indicator,
    audience: r.audience ?? indicator,
    scopes: toScopeList(r.scope ?? r.scopes),
    format,
    ttl: r.ttl ?? r.access_token_ttl ?? 300,
    alg: r.alg,
  });
}
function findResource(value) {
  if (resources.has(value)) return resources.get(value);
  for (const r of resources.values()) {
    if (r.audience === value) return r;
  }
  return undefined;
}

// clients: oidc-provider client metadata plus a few harness-only fields.
const HARNESS_CLIENT_FIELDS = ['extra_token_claims', 'default_resource', 'allowed_resources'];
const clientExtras = new Map();
const clientMetadata = [];
const providerScopes = new Set([...OIDC_SCOPES, ...toScopeList(config.scopes)]);
for (const c of config.clients ?? []) {
  const meta = { ...c };
  for (const f of HARNESS_CLIENT_FIELDS) delete meta[f];
  meta.grant_types ??= ['client_credentials'];
  if (!meta.grant_types.includes('authorization_code') && !('response_types' in meta)) {
    meta.response_types = [];
    meta.redirect_uris ??= [];
  }
  // oidc-provider only accepts its own (OpenID) scopes in client metadata;
  // resource scopes are limited per client in getResourceServerInfo instead.
  const allScopes = toScopeList(meta.scope);
  const oidcScopes = allScopes.filter((s) => providerScopes.has(s));
  if (oidcScopes.length) meta.scope = oidcScopes.join(' ');
  else delete meta.scope;
  clientMetadata.push(meta);
  clientExtras.set(c.client_id, {
    scopes: c.scope === undefined ? undefined : new Set(allScopes),
    extraTokenClaims: c.extra_token_claims,
    defaultResource: c.default_resource,
    allowedResources: c.allowed_resources,
  });
}

// users: [{ id, claims: {...id token / userinfo claims}, token_claims: {...} }]
const users = new Map();
for (const u of config.users ?? (config.user ? [config.user] : [])) {
  users.set(u.id, { id: u.id, claims: u.claims ?? {}, tokenClaims: u.token_claims ?? u.extra_token_claims });
}
const defaultUserId = config.users?.[0]?.id ?? config.user?.id;

// ------------------------------------------------------------------ keys ---

let keySeq = 0;
function generateKey(alg = 'RS256', kid = undefined) {
  let pair;
  if (/^(RS|PS)\d+$/.test(alg)) {
    pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else if (alg === 'ES256') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  } else if (alg === 'ES384') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' });
  } else if (alg === 'EdDSA' || alg === 'Ed25519') {
    pair = crypto.generateKeyPairSync('ed25519');
  } else {
    throw new Error(`unsupported signing alg ${alg}`);
  }
  keySeq += 1;
  const jwk = pair.privateKey.export({ format: 'jwk' });
  return {
    ...jwk,
    kid: kid ?? `key-${keySeq}-${alg.toLowerCase()}-${crypto.randomBytes(3).toString('hex')}`,
    alg,
    use: 'sig',
  };
}
const publicJwk = ({ d, p, q, dp, dq, qi, ...pub }) => pub;

// Newest key first: oidc-provider signs with the first key matching an alg.
let keys = (config.keys ?? [{ alg: config.signing_alg ?? 'RS256' }])
  .map((k) => (typeof k === 'string' ? { alg: k } : k))
  .map((k) => (k.kty ? { use: 'sig', ...k } : generateKey(k.alg, k.kid)));
const defaultAlg = config.signing_alg ?? keys[0].alg;

// --------------------------------------------------- shared token storage ---
// One store shared by every Provider instance (rotation re-creates the
// Provider), so grants, sessions and opaque tokens survive a key rotation.

const store = new Map();
const grantIndex = new Map();
const uidIndex = new Map();
const userCodeIndex = new Map();
const nowSec = () => Math.floor(Date.now() / 1000);

class SharedAdapter {
  constructor(name) { this.name = name; }

  key(id) { return `${this.name}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(key, { payload, expiresAt });
    if (payload.grantId) {
      if (!grantIndex.has(payload.grantId)) grantIndex.set(payload.grantId, new Set());
      grantIndex.get(payload.grantId).add(key);
    }
    if (this.name === 'Session' && payload.uid) uidIndex.set(payload.uid, id);
    if (payload.userCode) userCodeIndex.set(payload.userCode, id);
  }

  async find(id) {
    const key = this.key(id);
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  async findByUid(uid) { return uidIndex.has(uid) ? this.find(uidIndex.get(uid)) : undefined; }

  async findByUserCode(code) { return userCodeIndex.has(code) ? this.find(userCodeIndex.get(code)) : undefined; }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = nowSec();
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const key of grantIndex.get(grantId) ?? []) store.delete(key);
    grantIndex.delete(grantId);
  }
}

// -------------------------------------------------------------- provider ---

const cookieKeys = [crypto.randomBytes(32).toString('hex')];
let issuer; // set once the port is known
let provider;
let providerCallback;

function renderError(ctx, out, error) {
  log('error page:', out, error?.stack ?? '');
  ctx.type = 'application/json';
  ctx.body = out;
}

function buildProvider() {
  const p = new Provider(issuer, {
    adapter: SharedAdapter,
    clients: structuredClone(clientMetadata),
    jwks: { keys: structuredClone(keys) },
    cookies: { keys: cookieKeys },
    scopes: [...providerScopes],
    claims: config.claims ?? {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'given_name', 'family_name'],
      email: ['email', 'email_verified'],
    },
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: defaultAlg,
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    clientBasedCORS: () => true,
    // OAuth 2.1: no implicit / hybrid response types.
    responseTypes: ['code', 'none'],
    renderError,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: introspectionAllowedPolicy },
      revocation: { enabled: true, allowedPolicy: revocationAllowedPolicy },
      userinfo: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => {
          if (oneOf) return oneOf;
          return clientExtras.get(client.clientId)?.defaultResource;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo,
      },
    },
    pkce: { required: () => config.pkce_required !== false },
    extraTokenClaims,
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    findAccount: async (ctx, sub) => {
      const user = users.get(sub);
      if (!user) return undefined;
      return { accountId: sub, claims: async () => ({ ...user.claims, sub }) };
    },
    interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: {
      AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? config.default_access_token_ttl ?? 3600,
      ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? config.default_access_token_ttl ?? 3600,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: config.refresh_token_ttl ?? 24 * 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 24 * 3600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
      PreAuthorizedCode: 600,
    },
  });
  p.registerGrantType(
    TOKEN_EXCHANGE,
    tokenExchangeHandler,
    ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type',
      'requested_token_type', 'audience', 'resource', 'scope'],
    ['audience', 'resource'],
  );
  p.on('server_error', (ctx, err) => log('server_error', err?.stack ?? err));
  p.on('grant.error', (ctx, err) => log('grant.error', err?.name, err?.error_description ?? err?.message, err?.error_detail ?? ''));
  return p;
}

function rebuildProvider() {
  provider = buildProvider();
  providerCallback = provider.callback();
}

async function introspectionAllowedPolicy(ctx, client, token) {
  // Public clients may only introspect their own tokens; confidential clients
  // (e.g. the resource server, toolgate) may introspect any token.
  if (client.clientAuthMethod === 'none' && token.clientId !== client.clientId) return false;
  return true;
}

async function revocationAllowedPolicy(ctx, client, token) {
  // RFC 7009: a client may only revoke tokens that were issued to it.
  if (token.clientId !== client.clientId) {
    if (client.clientAuthMethod === 'none') return false;
    throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
  }
  return true;
}

async function getResourceServerInfo(ctx, indicator, client) {
  const r = resources.get(indicator);
  if (!r) throw new errors.InvalidTarget(`unknown resource indicator ${indicator}`);
  const extras = clientExtras.get(client.clientId);
  if (extras?.allowedResources && !extras.allowedResources.includes(indicator)) {
    throw new errors.InvalidTarget(`client is not allowed to request resource ${indicator}`);
  }
  const scopes = extras?.scopes ? r.scopes.filter((s) => extras.scopes.has(s)) : r.scopes;
  return {
    scope: scopes.join(' '),
    audience: r.audience,
    accessTokenTTL: r.ttl,
    accessTokenFormat: r.format,
    ...(r.format === 'jwt' ? { jwt: { sign: { alg: r.alg ?? defaultAlg } } } : undefined),
  };
}

async function extraTokenClaims(ctx, token) {
  if (token.exchangeClaims) return token.exchangeClaims;
  if (token.kind === 'ClientCredentials') {
    return clientExtras.get(token.clientId)?.extraTokenClaims;
  }
  if (token.accountId) {
    return users.get(token.accountId)?.tokenClaims;
  }
  return undefined;
}

// -------------------------------------------------- RFC 8693 token exchange ---

// oidc-provider's InvalidGrant has a fixed error_description; tests are easier
// to debug with the actual reason, so put it there.
function invalidGrant(reason) {
  const err = new errors.InvalidGrant(reason);
  err.error_description = reason;
  return err;
}

function looksLikeJwt(value) {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value);
}

async function validateSubjectToken(value, type) {
  if (looksLikeJwt(value)) {
    if (type !== TT_ACCESS_TOKEN && type !== TT_JWT) {
      throw new errors.InvalidRequest('unsupported subject_token_type');
    }
    let payload;
    try {
      ({ payload } = await jose.jwtVerify(
        value,
        jose.createLocalJWKSet({ keys: keys.map(publicJwk) }),
        { issuer, clockTolerance: 5 },
      ));
    } catch (e) {
      throw invalidGrant(`subject_token is invalid: ${e.code ?? e.message}`);
    }
    const extra = {};
    for (const [k, v] of Object.entries(payload)) {
      if (!REGISTERED_CLAIMS.has(k)) extra[k] = v;
    }
    return { sub: payload.sub, scope: payload.scope, act: payload.act, extra };
  }

  if (type !== TT_ACCESS_TOKEN) {
    throw new errors.InvalidRequest('unsupported subject_token_type');
  }
  const token = (await provider.AccessToken.find(value)) ?? (await provider.ClientCredentials.find(value));
  if (!token || !token.isValid) {
    throw invalidGrant('subject_token is invalid, expired or revoked');
  }
  const extra = token.extra ?? {};
  return {
    sub: token.accountId ?? token.clientId,
    scope: token.scope,
    act: extra.act,
    extra: Object.fromEntries(Object.entries(extra).filter(([k]) => !REGISTERED_CLAIMS.has(k))),
  };
}

async function tokenExchangeHandler(ctx) {
  const { params, client } = ctx.oidc;
  if (!params.subject_token) throw new errors.InvalidRequest('missing required parameter \'subject_token\'');
  if (!params.subject_token_type) throw new errors.InvalidRequest('missing required parameter \'subject_token_type\'');
  if (params.actor_token) throw new errors.InvalidRequest('actor_token is not supported by this test server');
  if (params.requested_token_type
    && params.requested_token_type !== TT_ACCESS_TOKEN
    && params.requested_token_type !== TT_JWT) {
    throw new errors.InvalidRequest('unsupported requested_token_type');
  }

  const targets = [params.resource, params.audience].flat().filter(Boolean);
  if (targets.length === 0) throw new errors.InvalidTarget('audience or resource is required');
  const matched = new Set(targets.map((t) => findResource(t)));
  if (matched.has(undefined)) throw new errors.InvalidTarget(`unknown audience/resource: ${targets.join(' ')}`);
  if (matched.size !== 1) throw new errors.InvalidTarget('exactly one target audience/resource is supported');
  const [target] = matched;

  const info = await getResourceServerInfo(ctx, target.indicator, client);
  const allowed = new Set(toScopeList(info.scope));
  let scope;
  if (params.scope) {
    const requested = toScopeList(params.scope);
    const denied = requested.filter((s) => !allowed.has(s));
    if (denied.length) throw new errors.InvalidScope('requested scope is not allowed for the target', denied.join(' '));
    scope = requested.join(' ');
  } else {
    scope = info.scope || undefined;
  }

  const subject = await validateSubjectToken(params.subject_token, params.subject_token_type);
  if (!subject.sub) throw invalidGrant('subject_token has no subject');

  const act = { sub: client.clientId, ...(subject.act ? { act: subject.act } : undefined) };
  const token = new provider.AccessToken({
    accountId: subject.sub,
    client,
    scope,
    gty: 'token_exchange',
  });
  // Exchanged tokens are always JWTs (RFC 9068), whatever the target's format.
  token.resourceServer = new provider.ResourceServer(target.indicator, {
    ...info,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: target.alg ?? defaultAlg } },
  });
  token.exchangeClaims = { ...subject.extra, act };
  const value = await token.save();

  ctx.body = {
    access_token: value,
    issued_token_type: TT_ACCESS_TOKEN,
    token_type: 'Bearer',
    expires_in: token.expiration,
    ...(scope ? { scope } : undefined),
  };
}

// ----------------------------------------------- auto-completed interaction ---

async function handleInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    const accountId = params.login_hint ?? defaultUserId;
    if (!accountId || !users.has(accountId)) {
      result = { error: 'access_denied', error_description: `unknown test user ${accountId}` };
    } else {
      result = { login: { accountId } };
    }
  } else if (prompt.name === 'consent') {
    const pd = prompt.details;
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    grant ??= new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (pd.missingOIDCScope) grant.addOIDCScope(pd.missingOIDCScope.join(' '));
    if (pd.missingOIDCClaims) grant.addOIDCClaims(pd.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(pd.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    result = { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` };
  }
  log(`interaction ${details.uid}: ${prompt.name} auto-completed`);
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

// A cookie-less client gets the final redirect directly: the server plays the
// browser itself (cookie jar and all) through login + consent, then hands the
// client the redirect to its redirect_uri carrying code, state and iss.
async function driveAuthorization(req, res) {
  const jar = new Map();
  let url = new URL(req.url, issuer).href;
  for (let hop = 0; hop < 20; hop += 1) {
    const r = await fetch(url, {
      redirect: 'manual',
      headers: {
        [INTERNAL_HEADER]: '1',
        cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
      },
    });
    for (const sc of r.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k, v] = a.trim().split('=');
        return (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now())
          || (k.toLowerCase() === 'max-age' && Number(v) <= 0);
      });
      if (expired || !value) jar.delete(name);
      else jar.set(name, value);
    }
    const location = r.headers.get('location');
    if (r.status >= 300 && r.status < 400 && location) {
      const next = new URL(location, url);
      if (next.origin === new URL(issuer).origin
        && (next.pathname.startsWith('/interaction/') || next.pathname.startsWith('/auth'))) {
        url = next.href;
        continue;
      }
      res.writeHead(r.status, { location: next.href, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    const body = Buffer.from(await r.arrayBuffer());
    res.writeHead(r.status, {
      'content-type': r.headers.get('content-type') ?? 'text/plain',
      'cache-control': 'no-store',
    });
    res.end(body);
    return;
  }
  sendJson(res, 500, { error: 'server_error', error_description: 'too many redirects in authorization' });
}

// ----------------------------------------------------------------- admin ---

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  return text ? JSON.parse(text) : {};
}

function keyListing() {
  return {
    current: keys[0].kid,
    keys: keys.map(({ kid, alg, kty, crv }) => ({ kid, alg, kty, ...(crv ? { crv } : undefined) })),
  };
}

async function handleAdmin(req, res, url) {
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /admin/keys':
      return sendJson(res, 200, keyListing());
    case 'GET /admin/stats':
      // Requests served per path (the tests bound how often the JWKS is fetched).
      return sendJson(res, 200, { requests: Object.fromEntries(requestCounts) });
    case 'POST /admin/rotate': {
      const body = await readBody(req);
      const key = generateKey(body.alg ?? keys[0].alg, body.kid);
      keys = [key, ...keys];
      rebuildProvider();
      log(`rotated: new signing key ${key.kid} (${key.alg})`);
      return sendJson(res, 200, keyListing());
    }
    case 'POST /admin/retire': {
      const body = await readBody(req);
      if (body.kid) {
        // {"kid": "..."}: retire exactly that key.
        if (!keys.some((k) => k.kid === body.kid)) return sendJson(res, 404, { error: 'unknown kid' });
        if (keys.length === 1) return sendJson(res, 400, { error: 'cannot retire the only key' });
        keys = keys.filter((k) => k.kid !== body.kid);
      } else if (body.all_but_newest) {
        // {"all_but_newest": true}: keep only the current key, whatever its alg.
        keys = [keys[0]];
      } else {
        // default: keep the newest key of each alg, so resources configured
        // with another alg can still be signed for.
        const seen = new Set();
        keys = keys.filter((k) => !seen.has(k.alg) && seen.add(k.alg));
      }
      rebuildProvider();
      log(`retired: keys now ${keys.map((k) => k.kid).join(', ')}`);
      return sendJson(res, 200, keyListing());
    }
    case 'POST /admin/sign': {
      const payload = await readBody(req);
      const q = url.searchParams;
      // ?kid= signs with that key, ?alg= with the newest key of that alg,
      // default: the current (newest) key.
      let key = keys[0];
      if (q.get('kid')) key = keys.find((k) => k.kid === q.get('kid'));
      else if (q.get('alg')) key = keys.find((k) => k.alg === q.get('alg'));
      if (!key) return sendJson(res, 404, { error: 'no such key' });
      if (q.get('fill') === '1' || q.get('fill') === 'true') {
        const now = nowSec();
        payload.iss ??= issuer;
        payload.iat ??= now;
        payload.exp ??= now + 300;
        payload.jti ??= crypto.randomUUID();
      }
      const header = { alg: key.alg, kid: q.get('header_kid') ?? key.kid, typ: q.get('typ') ?? 'at+jwt' };
      const jws = await new jose.SignJWT(payload)
        .setProtectedHeader(header)
        .sign(await jose.importJWK(key, key.alg));
      res.writeHead(200, { 'content-type': 'application/jwt', 'cache-control': 'no-store' });
      return res.end(jws);
    }
    default:
      return sendJson(res, 404, { error: 'not_found', error_description: `no admin route ${route}` });
  }
}

// ---------------------------------------------------------------- server ---

const requestCounts = new Map();

const server = http.createServer(async (req, res) => {
  try {
    if (!provider) return sendJson(res, 503, { error: 'starting' });
    const url = new URL(req.url, issuer);
    requestCounts.set(url.pathname, (requestCounts.get(url.pathname) ?? 0) + 1);
    if (url.pathname.startsWith('/admin/')) return await handleAdmin(req, res, url);
    if (req.method === 'GET' && url.pathname === '/.well-known/oauth-authorization-server') {
      // RFC 8414 metadata: oidc-provider only serves the OpenID discovery
      // document, whose fields are a compatible superset.
      req.url = `/.well-known/openid-configuration${url.search}`;
    } else if (req.method === 'GET' && url.pathname === '/auth' && !req.headers[INTERNAL_HEADER]) {
      return await driveAuthorization(req, res);
    } else if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(url.pathname)) {
      return await handleInteraction(req, res);
    }
    return providerCallback(req, res);
  } catch (err) {
    log('request failed', req.method, req.url, err?.stack ?? err);
    if (!res.headersSent) {
      sendJson(res, err?.statusCode ?? 500, {
        error: err?.error ?? 'server_error',
        error_description: err?.error_description ?? String(err?.message ?? err),
      });
    } else {
      res.end();
    }
  }
});

function shutdown(why) {
  log(`exiting (${why})`);
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (watchStdin) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

server.listen(listenPort, host, () => {
  const { port } = server.address();
  issuer = config.issuer ?? `http://${host}:${port}`;
  rebuildProvider();
  log(`listening on ${issuer} (keys: ${keys.map((k) => `${k.kid}/${k.alg}`).join(', ')})`);
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});
